package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"testing"

	"github.com/encjob/encjob/crypto"
)

// FuzzRawAESOnDecrypt feeds arbitrary provider ids, provider infos and
// ciphertexts to the raw AES keyring. Property: no panic; on error the
// materials stay without a data key and the error is ErrNoMatchingKey; a
// success only for an EDK that really authenticates under the key.
func FuzzRawAESOnDecrypt(f *testing.F) {
	key := bytes.Repeat([]byte{9}, 32)
	kr, err := NewRawAES("ns", "key", key)
	if err != nil {
		f.Fatal(err)
	}
	m := &crypto.EncryptionMaterials{Suite: crypto.DefaultSuite, Context: crypto.EncryptionContext{"a": "b"}}
	if err := kr.OnEncrypt(bg, m); err != nil {
		f.Fatal(err)
	}
	good := m.EncryptedDataKeys[0]
	f.Add(good.ProviderID, good.ProviderInfo, good.Ciphertext)
	f.Add("ns", []byte("key\x00\x00\x00\x80\x00\x00\x00\x0c"), []byte{})
	f.Add("ns", []byte("key\xff\xff\xff\xff\xff\xff\xff\xff"), good.Ciphertext)
	f.Fuzz(func(t *testing.T, id string, info, ct []byte) {
		dm := &crypto.DecryptionMaterials{Suite: crypto.DefaultSuite, Context: crypto.EncryptionContext{"a": "b"}}
		err := kr.OnDecrypt(bg, dm, []crypto.EncryptedDataKey{{ProviderID: id, ProviderInfo: info, Ciphertext: ct}})
		if err != nil {
			if dm.DataKey != nil || !errors.Is(err, crypto.ErrNoMatchingKey) {
				t.Fatalf("error %v with data key set %v", err, dm.DataKey != nil)
			}
			return
		}
		// Success must mean the EDK authenticates under the key (checked
		// independently; setup runs again in each fuzz worker, so the
		// seed's data key is not known here).
		block, _ := aes.NewCipher(key)
		gcm, _ := cipher.NewGCM(block)
		aad, _ := dm.Context.Serialize()
		want, err := gcm.Open(nil, info[len(info)-12:], ct, aad)
		if err != nil || !bytes.Equal(dm.DataKey, want) || len(want) != 32 {
			t.Fatal("unwrapped an EDK that does not authenticate")
		}
	})
}
