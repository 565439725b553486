package interop_test

import (
	"fmt"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/interop"
)

func kmsKeyring(k interop.Key) (crypto.Keyring, error) {
	return nil, fmt.Errorf("KMS key type %q: not yet", k.Type)
}
