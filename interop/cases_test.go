package interop_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/encjob/encjob/interop"
)

// A testCase is one message: EncKeys wrap its data key, DecKeys are given
// to the decryptor (any one of them must do).
type testCase struct {
	Name    string
	Suite   uint16
	Frame   int // 0: non-framed (only encjob writes those)
	Size    int
	Context map[string]string
	EncKeys []interop.Key
	DecKeys []interop.Key
}

func (c testCase) signed() bool {
	switch c.Suite {
	case 0x0214, 0x0346, 0x0378, 0x0578:
		return true
	}
	return false
}

func (c testCase) suiteHex() string { return fmt.Sprintf("0x%04X", c.Suite) }

// pkcs1Decrypt reports whether decrypting needs RSA PKCS#1 v1.5 private
// decryption (which Node.js refuses without SecurityRevertPKCS1).
func (c testCase) pkcs1Decrypt() bool {
	for _, k := range c.DecKeys {
		if k.Type == "raw-rsa" && k.Padding == "pkcs1" {
			return true
		}
	}
	return false
}

// plaintext is deterministic per case, so a mismatch reproduces.
func (c testCase) plaintext() []byte {
	var seed [32]byte
	copy(seed[:], c.Name)
	b := make([]byte, c.Size)
	r := mrand.NewChaCha8(seed)
	for i := 0; i < len(b); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

// checkContext compares a context reported by a decryptor (or encryptor)
// with the one the case encrypted under: the same pairs, plus
// aws-crypto-public-key exactly when the suite is signed.
func (c testCase) checkContext(got map[string]string) error {
	want := len(c.Context)
	if c.signed() {
		want++
		if got["aws-crypto-public-key"] == "" {
			return errors.New("context lacks aws-crypto-public-key for a signed suite")
		}
	}
	for k, v := range c.Context {
		g, ok := got[k]
		if !ok {
			return fmt.Errorf("context lacks key %q", k)
		}
		if g != v {
			return fmt.Errorf("context key %q is %q, want %q", k, g, v)
		}
	}
	if len(got) != want {
		return fmt.Errorf("context has %d pairs (%s), want %d", len(got), strings.Join(keysOf(got), ", "), want)
	}
	return nil
}

func keysOf(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, fmt.Sprintf("%q", k))
	}
	sort.Strings(ks)
	return ks
}

// comparePlaintext reports where got first differs from want without
// printing either.
func comparePlaintext(got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	return fmt.Errorf("plaintext differs: got %d bytes, want %d, first difference at byte %d", len(got), len(want), i)
}

type fixture struct {
	aes128, aes192, aes256 interop.Key
	rsa2048                *rsa.PrivateKey
	rsa4096                *rsa.PrivateKey
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

func keys(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		mk := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
		fix.aes128 = interop.AESKey("encjob-interop", "aes-128", mk(16))
		fix.aes192 = interop.AESKey("encjob-interop", "aes-192", mk(24))
		fix.aes256 = interop.AESKey("encjob-interop", "aes-256", mk(32))
		if fix.rsa2048, fixErr = rsa.GenerateKey(rand.Reader, 2048); fixErr != nil {
			return
		}
		fix.rsa4096, fixErr = rsa.GenerateKey(rand.Reader, 4096)
	})
	if fixErr != nil {
		t.Fatalf("generating keys: %v", fixErr)
	}
	return &fix
}

func (f *fixture) rsa(t testing.TB, bits int, padding string) interop.Key {
	t.Helper()
	priv := f.rsa2048
	if bits == 4096 {
		priv = f.rsa4096
	}
	k, err := interop.RSAKey("encjob-interop-rsa", fmt.Sprintf("rsa-%d-%s", bits, padding), priv, padding)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const mib = 1 << 20

var allSuites = []uint16{0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378, 0x0478, 0x0578}

// contexts: keys and values beyond ASCII, and keys whose UTF-16 code-unit
// order differs from their UTF-8 byte order (U+E000 and U+FF21 sort after
// U+1F600 in UTF-8, before it in UTF-16, where U+1F600 is a surrogate pair
// starting 0xD83D).
var contexts = []struct {
	name string
	ec   map[string]string
}{
	{"empty", map[string]string{}},
	{"ascii", map[string]string{"purpose": "interop", "tenant": "encjob"}},
	{"non-ascii", map[string]string{"clé": "valeur é", "数据": "秘密", "ключ": "значение", "emoji 😀": "🔐", "Zürich": ""}},
	{"utf16-order", map[string]string{"\uFF21": "fullwidth A", "😀": "grinning", "\uE000": "private use", "a": "b", "é": "\U0001F510"}},
	{"empty-value", map[string]string{"k": ""}},
}

var nonASCII = contexts[2].ec

// largeContext has 64 pairs, about 7 KB serialised, with keys that are
// not in insertion order. (Not more pairs: the AWS Encryption SDK for Go
// v0.4.0 needs about a minute for a message with 400 pairs.)
func largeContext() map[string]string {
	ec := make(map[string]string, 64)
	for i := range 64 {
		ec[fmt.Sprintf("k-%02d-ñ-%d", (i*37)%64, i)] = strings.Repeat("v", 3*i) + "✓"
	}
	return ec
}

// framedCases is the matrix every peer encrypts and decrypts.
func framedCases(t testing.TB) []testCase {
	f := keys(t)
	aes := []interop.Key{f.aes256}
	var cs []testCase
	add := func(c testCase) {
		if c.DecKeys == nil {
			c.DecKeys = c.EncKeys
		}
		cs = append(cs, c)
	}
	for _, s := range allSuites {
		add(testCase{Name: fmt.Sprintf("suite-%04X", s), Suite: s, Frame: 4096, Size: 4097, Context: nonASCII, EncKeys: aes})
	}
	for _, k := range []interop.Key{f.aes128, f.aes192, f.aes256} {
		add(testCase{Name: "keyring-" + k.Name, Suite: 0x0578, Frame: 4096, Size: 100, Context: nonASCII, EncKeys: []interop.Key{k}})
		add(testCase{Name: "keyring-" + k.Name + "-v1", Suite: 0x0178, Frame: 4096, Size: 100, Context: nonASCII, EncKeys: []interop.Key{k}})
	}
	for _, p := range interop.Paddings {
		k := f.rsa(t, 2048, p)
		add(testCase{Name: "keyring-rsa-2048-" + p, Suite: 0x0578, Frame: 4096, Size: 100, Context: nonASCII, EncKeys: []interop.Key{k}})
	}
	add(testCase{Name: "keyring-rsa-4096-oaep-sha512", Suite: 0x0378, Frame: 4096, Size: 100, Context: nonASCII,
		EncKeys: []interop.Key{f.rsa(t, 4096, "oaep-sha512")}})
	pubOnly := f.rsa(t, 2048, "oaep-sha384")
	add(testCase{Name: "keyring-rsa-2048-oaep-sha384-public-only", Suite: 0x0478, Frame: 4096, Size: 100, Context: nonASCII,
		EncKeys: []interop.Key{pubOnly.PublicOnly()}, DecKeys: []interop.Key{pubOnly}})
	rsaKey := f.rsa(t, 2048, "oaep-sha256")
	multi := []interop.Key{f.aes256, rsaKey}
	for _, d := range []struct {
		name string
		keys []interop.Key
	}{{"both", multi}, {"aes-only", []interop.Key{f.aes256}}, {"rsa-only", []interop.Key{rsaKey}}} {
		add(testCase{Name: "multi-decrypt-" + d.name, Suite: 0x0578, Frame: 4096, Size: 5000, Context: contexts[3].ec, EncKeys: multi, DecKeys: d.keys})
	}
	// An AES generator with an RSA PKCS#1 v1.5 child, under a v1 suite,
	// decrypted by the RSA key alone.
	add(testCase{Name: "multi-aes-rsa-pkcs1-v1", Suite: 0x0146, Frame: 4096, Size: 5000, Context: nonASCII,
		EncKeys: []interop.Key{f.aes192, f.rsa(t, 2048, "pkcs1")}, DecKeys: []interop.Key{f.rsa(t, 2048, "pkcs1")}})
	add(testCase{Name: "multi-rsa-generator", Suite: 0x0578, Frame: 4096, Size: 5000, Context: nonASCII,
		EncKeys: []interop.Key{f.rsa(t, 2048, "oaep-sha512"), f.aes128}, DecKeys: []interop.Key{f.aes128}})
	for _, fs := range []struct {
		frame int
		sizes []int
	}{
		{4096, []int{0, 1, 4095, 4096, 4097, 3 * 4096, mib + 13}},
		{1, []int{0, 1, 2, 33}},
		{7, []int{6, 49, 50}},
		{100, []int{1000, 1001}},
		{mib, []int{0, 1, mib - 1, mib, mib + 1}},
	} {
		for _, n := range fs.sizes {
			add(testCase{Name: fmt.Sprintf("frame-%d-size-%d", fs.frame, n), Suite: 0x0578, Frame: fs.frame, Size: n, Context: nonASCII, EncKeys: aes})
		}
	}
	for _, s := range []uint16{0x0014, 0x0378} {
		for _, n := range []int{0, 4096, 4097} {
			add(testCase{Name: fmt.Sprintf("suite-%04X-frame-4096-size-%d", s, n), Suite: s, Frame: 4096, Size: n, Context: nonASCII, EncKeys: aes})
		}
	}
	for _, ec := range contexts {
		for _, s := range []uint16{0x0478, 0x0178} {
			add(testCase{Name: fmt.Sprintf("context-%s-%04X", ec.name, s), Suite: s, Frame: 4096, Size: 300, Context: ec.ec, EncKeys: aes})
		}
	}
	add(testCase{Name: "context-large", Suite: 0x0578, Frame: 4096, Size: 300, Context: largeContext(), EncKeys: aes})
	add(testCase{Name: "context-utf16-order-rsa", Suite: 0x0578, Frame: 4096, Size: 300, Context: contexts[3].ec, EncKeys: []interop.Key{rsaKey}})
	return cs
}

// nonFramedCases are messages only encjob writes (neither peer can); both
// peers must read them.
func nonFramedCases(t testing.TB) []testCase {
	f := keys(t)
	var cs []testCase
	for _, s := range []uint16{0x0014, 0x0178, 0x0378, 0x0478, 0x0578} {
		for _, n := range []int{0, 1, 4097} {
			cs = append(cs, testCase{Name: fmt.Sprintf("non-framed-%04X-size-%d", s, n), Suite: s, Size: n, Context: nonASCII,
				EncKeys: []interop.Key{f.aes256}, DecKeys: []interop.Key{f.aes256}})
		}
	}
	rsaKey := f.rsa(t, 2048, "oaep-sha1")
	cs = append(cs, testCase{Name: "non-framed-0578-size-1MiB-multi", Suite: 0x0578, Size: mib + 7, Context: contexts[3].ec,
		EncKeys: []interop.Key{f.aes128, rsaKey}, DecKeys: []interop.Key{rsaKey}})
	return cs
}

// jsPeer returns the JS peer, skipping the test when it is not installed,
// or failing it when CI=true.
func jsPeer(t *testing.T) *interop.JSPeer {
	t.Helper()
	p, err := interop.FindJSPeer()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and the JS peer is missing: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	return p
}

// pkcs1Flags returns the node flags for batches that decrypt with RSA
// PKCS#1 v1.5, or ok=false when this Node.js cannot do it at all.
func pkcs1Flags(t *testing.T, p *interop.JSPeer) ([]string, bool) {
	if p.SupportsFlag(context.Background(), interop.SecurityRevertPKCS1) {
		return []string{interop.SecurityRevertPKCS1}, true
	}
	return nil, false
}

func intPtr(n int) *int { return &n }
