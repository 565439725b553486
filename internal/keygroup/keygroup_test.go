package keygroup

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/spec"
)

// rawMembers writes an RSA key pair (rsa.pem private, rsa.pub.pem public)
// and returns a group with a raw-aes member (its key generated on Build)
// and a raw-rsa member under the public key, in that order: a raw-rsa
// group encrypts with a public key and decrypts with the private key.
func rawMembers(t *testing.T) (dir string, g *spec.KeyGroup) {
	t.Helper()
	dir = t.TempDir()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rsa.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rsa.pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, &spec.KeyGroup{Members: []spec.KeyGroup{
		{Provider: spec.ProviderRawAES, KeyFile: "aes.key", KeyEncoding: "raw", Namespace: "ns", Name: "aes", Generate: true},
		{Provider: spec.ProviderRawRSA, KeyFile: "rsa.pub.pem", Namespace: "ns", Name: "rsa", Padding: "oaep-sha256"},
	}}
}

func TestBuildMembers(t *testing.T) {
	ctx := context.Background()
	dir, gs := rawMembers(t)
	o := Options{BaseDir: dir}
	g, err := Build(ctx, "both", gs, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Members()) != 2 || g.Members()[0].Name != "both.members[0]" {
		t.Fatalf("members = %v", g.Members())
	}
	if len(g.Notes) != 1 || !strings.HasPrefix(g.Notes[0], `key group "both.members[0]": will generate a 256-bit AES key at `) {
		t.Errorf("notes = %q, want the member's pending-key note", g.Notes)
	}
	if p := g.Pending(); !slices.Equal(p, []string{filepath.Join(dir, "aes.key")}) {
		t.Errorf("Pending = %q", p)
	}
	notes, err := g.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], `key group "both.members[0]": generated a new 256-bit AES key`) || len(g.Pending()) != 0 {
		t.Errorf("GenerateKeys notes = %q, pending %q, want the member's key-generation note", notes, g.Pending())
	}
	if ids := g.KeyIDs(); !slices.Equal(ids, []string{"ns/aes", "ns/rsa"}) {
		t.Errorf("KeyIDs = %q", ids)
	}

	pt := []byte("one data key, wrapped by two providers")
	msg, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(g.Keyring)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	edks := h.EncryptedDataKeys
	if len(edks) != 2 || EDKLabel(edks[0]) != "ns/aes" || EDKLabel(edks[1]) != "ns/rsa" {
		t.Fatalf("EDKs = %d, want the generator's (aes) first, then rsa", len(edks))
	}
	for i, e := range edks {
		if !g.Holds(e) {
			t.Errorf("the group does not hold its own EDK %d", i)
		}
	}

	// Each member alone decrypts; each holds only its own EDK.
	for i := range gs.Members {
		m := gs.Members[i]
		m.Generate = false
		if m.Provider == spec.ProviderRawRSA {
			m.KeyFile = "rsa.pem"
		}
		single, err := Build(ctx, "single", &m, o)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(single.Keyring)})
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("member %d alone: %q, %v", i, got, err)
		}
		for j, e := range edks {
			if single.Holds(e) != (i == j) {
				t.Errorf("member %d Holds(EDK %d) = %v", i, j, !(i == j))
			}
		}
	}

	// A group made by hand from the spec (no key files read) matches raw
	// members from their namespace and name.
	hand := &Group{Name: "both", Spec: gs}
	if !hand.HoldsAny(edks[1:]) || !hand.HoldsAny(edks[:1]) || !slices.Equal(hand.KeyIDs(), g.KeyIDs()) {
		t.Error("a hand-made group does not match its members' EDKs")
	}
	other := &Group{Spec: &spec.KeyGroup{Members: []spec.KeyGroup{{Provider: spec.ProviderRawAES, Namespace: "ns", Name: "other"}}}}
	if other.HoldsAny(edks) {
		t.Error("an unrelated group holds the EDKs")
	}
}

func TestBuildMemberErrorNamesMember(t *testing.T) {
	dir, gs := rawMembers(t)
	gs.Members[1].KeyFile = "missing.pem"
	_, err := Build(context.Background(), "both", gs, Options{BaseDir: dir})
	if err == nil || !strings.HasPrefix(err.Error(), `key group "both.members[1]": `) {
		t.Fatalf("err = %v, want one naming both.members[1]", err)
	}
}

func TestCombine(t *testing.T) {
	_, gs := rawMembers(t)
	if _, err := Combine("g", gs, []*Group{{Spec: &gs.Members[0]}}); err == nil {
		t.Error("Combine accepted 1 built member for 2")
	}
	// Members without keyrings (built to match only) give no keyring.
	g, err := Combine("g", gs, []*Group{{Spec: &gs.Members[0]}, {Spec: &gs.Members[1]}})
	if err != nil || g.Keyring != nil || len(g.Members()) != 2 {
		t.Fatalf("Combine = %+v, %v", g, err)
	}
}

// TestBuildNeverWritesGenerateKeysDoes: Build (what plan runs) writes
// nothing and says what apply will create; GenerateKeys (what apply runs)
// makes the key file with mode 0600 in parent directories made with mode
// 0700, the same keyring then uses it, and later calls and builds reuse it.
func TestBuildNeverWritesGenerateKeysDoes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	g := &spec.KeyGroup{Provider: spec.ProviderRawAES, KeyFile: "keys/new/q.key", Namespace: "ns", Name: "q", Generate: true}
	path := filepath.Join(dir, "keys/new/q.key")

	grp, err := Build(ctx, "q", g, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("Build created %v", entries)
	}
	if !slices.Equal(grp.Pending(), []string{path}) {
		t.Errorf("Pending = %q, want [%s]", grp.Pending(), path)
	}
	if want := `key group "q": will generate a 256-bit AES key at ` + path + ` (mode 0600) on apply`; !slices.Equal(grp.Notes, []string{want}) {
		t.Errorf("notes = %q, want %q", grp.Notes, want)
	}
	cmm := crypto.NewDefaultCMM(grp.Keyring) // made before the key exists, as Prepare does
	_, err = crypto.Encrypt(ctx, []byte("x"), crypto.EncryptOptions{CMM: cmm})
	if err == nil || !strings.Contains(err.Error(), "does not exist yet") {
		t.Errorf("encrypting with a pending key: %v, want a clear error", err)
	}
	if _, err := os.Lstat(path); err == nil {
		t.Fatal("using the pending keyring created the key")
	}

	notes, err := grp.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(grp.Pending()) != 0 || len(notes) != 1 || !strings.Contains(notes[0], "generated a new 256-bit AES key at "+path+" (mode 0600)") {
		t.Errorf("GenerateKeys: pending %q, notes %q", grp.Pending(), notes)
	}
	for p, want := range map[string]os.FileMode{filepath.Join(dir, "keys"): 0o700 | os.ModeDir, filepath.Dir(path): 0o700 | os.ModeDir, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	key, err := os.ReadFile(path)
	if err != nil || len(key) != 32 {
		t.Fatalf("key file: %d bytes, %v", len(key), err)
	}
	msg, err := crypto.Encrypt(ctx, []byte("x"), crypto.EncryptOptions{CMM: cmm})
	if err != nil {
		t.Fatalf("the CMM made before generation does not use the new key: %v", err)
	}
	if again, err := grp.GenerateKeys(); err != nil || len(again) != 0 {
		t.Errorf("second GenerateKeys: %q, %v, want a no-op", again, err)
	}

	rebuilt, err := Build(ctx, "q", g, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(rebuilt.Notes) != 0 || len(rebuilt.Pending()) != 0 {
		t.Errorf("rebuilt group: notes %q, pending %q, want none (the key exists)", rebuilt.Notes, rebuilt.Pending())
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, key) {
		t.Error("the key was replaced")
	}
	if _, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(rebuilt.Keyring)}); err != nil {
		t.Errorf("the generated key does not decrypt what it encrypted: %v", err)
	}
}

// TestGenerateKeysUsesAKeyMadeMeanwhile: when another run created the key
// file between Build and GenerateKeys, that key is used, not replaced.
func TestGenerateKeysUsesAKeyMadeMeanwhile(t *testing.T) {
	dir := t.TempDir()
	g := &spec.KeyGroup{Provider: spec.ProviderRawAES, KeyFile: "q.key", Namespace: "ns", Name: "q", Generate: true}
	grp, err := Build(context.Background(), "q", g, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{7}, 32)
	if err := os.WriteFile(filepath.Join(dir, "q.key"), other, 0o600); err != nil {
		t.Fatal(err)
	}
	if notes, err := grp.GenerateKeys(); err != nil || len(notes) != 0 {
		t.Fatalf("GenerateKeys: %q, %v", notes, err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "q.key")); !bytes.Equal(now, other) {
		t.Error("the other run's key was replaced")
	}
}

// Offline groups answer from the spec alone: raw keys by namespace and
// name, KMS key ARNs as they are, discovery by filter; KMS aliases need
// Build.
func TestOffline(t *testing.T) {
	const arn = "arn:aws:kms:us-east-1:111122223333:key/one"
	kmsEDK := crypto.EncryptedDataKey{ProviderID: "aws-kms", ProviderInfo: []byte(arn)}
	g, ok := Offline("k", &spec.KeyGroup{Provider: spec.ProviderAWSKMS, Keys: []string{arn}})
	if !ok || !g.Holds(kmsEDK) || !slices.Equal(g.KeyIDs(), []string{arn}) || g.Keyring != nil {
		t.Fatalf("offline ARN group: ok %v, %+v", ok, g)
	}
	if _, ok := Offline("k", &spec.KeyGroup{Provider: spec.ProviderAWSKMS, Keys: []string{"alias/x"}}); ok {
		t.Error("an alias group was built offline")
	}
	d, ok := Offline("d", &spec.KeyGroup{Provider: spec.ProviderAWSKMS, Discovery: true,
		DiscoveryFilter: &spec.DiscoveryFilter{Partition: "aws", Accounts: []string{"999999999999"}}})
	if !ok || d.Holds(kmsEDK) {
		t.Errorf("discovery filter for another account holds the EDK (ok %v)", ok)
	}
	if _, ok := Offline("x", &spec.KeyGroup{Provider: "nonsense"}); ok {
		t.Error("unknown provider built offline")
	}
}
