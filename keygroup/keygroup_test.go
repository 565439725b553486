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
	if len(g.Notes) != 1 || !strings.HasPrefix(g.Notes[0], `key group "both.members[0]": generated a new 256-bit key`) {
		t.Errorf("notes = %q, want the member's key-generation note", g.Notes)
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
