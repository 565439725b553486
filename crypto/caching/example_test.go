package caching_test

import (
	"context"
	"fmt"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/caching"
	"github.com/encjob/encjob/crypto/keyring"
)

// Reuse each data key for up to 100 messages: 250 messages need 3 data
// keys.
func Example() {
	kr, _ := keyring.NewRawAES("my-org", "bulk", make([]byte, 32)) // use a real random key
	cmm, err := caching.New(crypto.NewDefaultCMM(kr), caching.Options{
		Capacity:             1000,
		MaxAge:               5 * time.Minute,
		MaxMessagesEncrypted: 100,
	})
	if err != nil {
		panic(err)
	}
	for i := 0; i < 250; i++ {
		if _, err := crypto.Encrypt(context.Background(), []byte("small file"), crypto.EncryptOptions{CMM: cmm}); err != nil {
			panic(err)
		}
	}
	s := cmm.Stats()
	fmt.Println(s.UnderlyingCalls, s.Hits)
	// Output: 3 247
}
