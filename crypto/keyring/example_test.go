package keyring_test

import (
	"context"
	"fmt"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
)

// A key group of two raw AES keys: the first generates the data key, both
// wrap it, and either one alone decrypts.
func Example() {
	ctx := context.Background()
	primary, _ := keyring.NewRawAES("my-org", "primary", make([]byte, 32)) // use a real random key
	backup, _ := keyring.NewRawAES("my-org", "backup", make([]byte, 16))
	group, err := keyring.NewMulti(primary, backup)
	if err != nil {
		panic(err)
	}
	msg, err := crypto.Encrypt(ctx, []byte("hello"), crypto.EncryptOptions{
		CMM:     crypto.NewDefaultCMM(group),
		Context: crypto.EncryptionContext{"purpose": "example"},
	})
	if err != nil {
		panic(err)
	}
	pt, h, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(backup)})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(pt), len(h.EncryptedDataKeys))
	// Output: hello 2
}

func ExampleParsePadding() {
	for _, s := range []string{"OAEP_SHA256_MGF1", "RSA_PKCS1", "oaep-sha512"} {
		p, _ := keyring.ParsePadding(s)
		fmt.Println(p)
	}
	// Output:
	// oaep-sha256
	// pkcs1
	// oaep-sha512
}
