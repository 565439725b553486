package keygroup

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
	"github.com/encjob/encjob/spec"
)

func writeECKeys(t *testing.T, dir, name string) *ecdh.PrivateKey {
	t.Helper()
	k, err := ecdh.P384().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(k.PublicKey())
	for file, b := range map[string]*pem.Block{name + ".pem": {Type: "PRIVATE KEY", Bytes: der}, name + ".pub.pem": {Type: "PUBLIC KEY", Bytes: pub}} {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// A mixed group (raw ECDH + raw AES + AWS KMS RSA through the emulator)
// encrypts once for all three; each member alone decrypts and holds only
// its own EDK; the recipient's discovery group decrypts the ECDH EDK.
func TestMixedAsymmetricMembers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeECKeys(t, dir, "me")
	writeECKeys(t, dir, "them")
	if err := os.WriteFile(filepath.Join(dir, "aes.key"), bytes.Repeat([]byte{9}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	seed, _ := kmsemu.ParseSeed([]byte("keys:\n  - id: 66666666-6666-4666-8666-666666666666\n    keySpec: RSA_2048\n"))
	emu, err := kmsemu.New(seed)
	if err != nil {
		t.Fatal(err)
	}
	srv := kmsemutest.Serve(t, emu)
	rsaARN := "arn:aws:kms:us-east-1:111122223333:key/66666666-6666-4666-8666-666666666666"
	o := Options{BaseDir: dir, KMS: awskms.Config{Region: "us-east-1", Endpoint: srv.URL, Credentials: kmsemutest.Credentials}}
	gs := &spec.KeyGroup{Members: []spec.KeyGroup{
		{Provider: spec.ProviderRawECDH, Curve: "ECC_NIST_P384", Scheme: "RawPrivateKeyToStaticPublicKey", PrivateKeyFile: "me.pem", RecipientPublicKeyFile: "them.pub.pem"},
		{Provider: spec.ProviderRawAES, KeyFile: "aes.key", KeyEncoding: "raw", Namespace: "ns", Name: "aes"},
		{Provider: spec.ProviderAWSKMSRSA, Keys: []string{rsaARN}, EncryptionAlgorithm: "RSAES_OAEP_SHA_256"},
	}}
	g, err := Build(ctx, "mixed", gs, o)
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("mixed members")
	msg, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(g.Keyring), Suite: crypto.SuiteByID(0x0478),
		Context: crypto.EncryptionContext{"k": "v"}, FrameLength: 4096, CommitmentPolicy: crypto.RequireEncryptRequireDecrypt})
	if err != nil {
		t.Fatal(err)
	}
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil || len(h.EncryptedDataKeys) != 3 {
		t.Fatalf("header: %v", err)
	}
	if ids := g.KeyIDs(); len(ids) != 3 || !strings.HasPrefix(ids[0], "raw-ecdh/") || ids[2] != rsaARN {
		t.Errorf("KeyIDs = %v", ids)
	}
	for i := range gs.Members {
		single, err := Build(ctx, "single", &gs.Members[i], o)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(single.Keyring)})
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("member %d alone: %v", i, err)
		}
		for j, e := range h.EncryptedDataKeys {
			if single.Holds(e) != (i == j) {
				t.Errorf("member %d Holds(EDK %d) = %v", i, j, i != j)
			}
		}
	}
	if l := EDKLabel(h.EncryptedDataKeys[0]); !strings.HasPrefix(l, "raw-ecdh/recipient:") {
		t.Errorf("ECDH EDK label %q", l)
	}
	if l := EDKLabel(h.EncryptedDataKeys[2]); l != rsaARN {
		t.Errorf("RSA EDK label %q", l)
	}
	// The recipient decrypts with discovery; the ephemeral group cannot.
	disc, err := Build(ctx, "disc", &spec.KeyGroup{Provider: spec.ProviderRawECDH, Curve: "ECC_NIST_P384", Scheme: "PublicKeyDiscovery", PrivateKeyFile: "them.pem"}, o)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(disc.Keyring)}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("discovery: %v", err)
	}
	eph, err := Build(ctx, "eph", &spec.KeyGroup{Provider: spec.ProviderRawECDH, Curve: "ECC_NIST_P384", Scheme: "EphemeralPrivateKeyToStaticPublicKey", RecipientPublicKeyFile: "them.pub.pem"}, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(eph.Keyring)}); !errors.Is(err, keyring.ErrEncryptOnly) {
		t.Errorf("ephemeral decrypt: %v", err)
	}
	// A public key given as the private key: a clear build error.
	_, err = Build(ctx, "pub", &spec.KeyGroup{Provider: spec.ProviderRawECDH, Curve: "ECC_NIST_P384", Scheme: "PublicKeyDiscovery", PrivateKeyFile: "them.pub.pem"}, o)
	if err == nil || !strings.Contains(err.Error(), `key group "pub"`) || !strings.Contains(err.Error(), "holds only a public key") {
		t.Errorf("public key as private: %v", err)
	}
	// The RSA group matches offline from its ARN.
	if og, ok := Offline("r", &gs.Members[2]); !ok || !og.Holds(h.EncryptedDataKeys[2]) || og.Holds(h.EncryptedDataKeys[1]) {
		t.Error("offline RSA group does not match its EDK")
	}
}
