package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/interop"
	"github.com/encjob/encjob/interop/goesdk"
)

// headerInPlaceCase is a message as encjob's in-place header rewrite
// leaves it (reencrypt.headerInPlace): the new header crypto.RewrapHeader
// built, of the old header's length, over the old file's remaining bytes.
// sources.LocalDestination.RewriteHeader writes exactly that (its tests in
// sources/ assert the bytes, the crash cases included); this module does
// not link the storage layer.
type headerInPlaceCase struct {
	tc   testCase
	path string
	msg  []byte
}

// headerInPlaceCases rewraps, for every unsigned suite, framed messages
// around the frame boundaries and non-framed ones from the old AES key
// to a new one whose name has the same length (so the new header has the
// old one's length), overwriting the header bytes of the old message in
// place; the body bytes stay the source's.
func headerInPlaceCases(t *testing.T, dir string) []headerInPlaceCase {
	f := keys(t)
	ctx := context.Background()
	k := make([]byte, 32)
	rand.Read(k)
	newAES := interop.AESKey("encjob-interop", "aes-25x", k) // as long as "aes-256"
	var cs []headerInPlaceCase
	for _, s := range allSuites {
		if crypto.SuiteByID(s).Signed() {
			continue // signed suites are re-signed over the body: never in place
		}
		for _, fs := range []struct {
			frame int
			sizes []int
		}{{4096, []int{0, 1, 4095, 4096, 4097}}, {0, []int{0, 4097}}} {
			for _, n := range fs.sizes {
				tc := testCase{Name: fmt.Sprintf("inplace-%04X-frame-%d-size-%d", s, fs.frame, n), Suite: s, Frame: fs.frame, Size: n,
					Context: nonASCII, EncKeys: []interop.Key{newAES}, DecKeys: []interop.Key{newAES}}
				src := tc
				src.EncKeys = []interop.Key{f.aes256}
				o, err := encryptOptions(src)
				if err != nil {
					t.Fatal(err)
				}
				old, err := crypto.Encrypt(ctx, tc.plaintext(), o)
				if err != nil {
					t.Fatalf("%s: %v", tc.Name, err)
				}
				oldKR, _ := encjobKeyring(src.EncKeys)
				newKR, _ := encjobKeyring(tc.EncKeys)
				pol := crypto.RequireEncryptRequireDecrypt
				if s < 0x0400 {
					pol = crypto.ForbidEncryptAllowDecrypt
				}
				hdr, _, oh, err := crypto.RewrapHeader(ctx, bufio.NewReader(bytes.NewReader(old)), crypto.RewrapOptions{AllowHeaderNonceReuse: true,
					Decrypt: crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(oldKR), CommitmentPolicy: pol}, Keyring: newKR, CommitmentPolicy: pol})
				if err != nil || len(hdr) != oh.Len() {
					t.Fatalf("%s: rewrap header: %v (new %d bytes, old %d)", tc.Name, err, len(hdr), oh.Len())
				}
				msg := bytes.Clone(old)
				copy(msg, hdr) // the in-place write: header bytes only
				p := filepath.Join(dir, tc.Name+".ct")
				if err := os.WriteFile(p, msg, 0o600); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(body(t, msg), body(t, old)) {
					t.Fatalf("%s: the body changed", tc.Name)
				}
				cs = append(cs, headerInPlaceCase{tc: tc, path: p, msg: msg})
			}
		}
	}
	return cs
}

// TestRewrapHeaderInPlaceGoESDK: the AWS Encryption SDK for Go decrypts
// every message whose header was rewritten in place under the new key
// group, to the plaintext and context, and not under the old one.
func TestRewrapHeaderInPlaceGoESDK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old := []interop.Key{keys(t).aes256}
	for _, c := range headerInPlaceCases(t, t.TempDir()) {
		pt, r, err := goesdk.Decrypt(ctx, c.tc.DecKeys, c.msg, goesdk.Options{})
		if err != nil {
			t.Fatalf("%s: go esdk decrypt under the new key group: %v", c.tc.Name, err)
		}
		if err := check(c.tc, pt, msgInfo{Suite: r.Suite, Context: r.Context, FrameLength: -1}); err != nil {
			t.Fatalf("%s: %v", c.tc.Name, err)
		}
		if _, _, err := goesdk.Decrypt(ctx, old, c.msg, goesdk.Options{}); err == nil {
			t.Fatalf("%s: go esdk decrypted it under the old key group", c.tc.Name)
		}
	}
}

// TestRewrapHeaderInPlaceJS is TestRewrapHeaderInPlaceGoESDK for the AWS
// Encryption SDK for JavaScript.
func TestRewrapHeaderInPlaceJS(t *testing.T) {
	t.Parallel()
	js := jsPeer(t)
	dir := t.TempDir()
	cs := headerInPlaceCases(t, dir)
	old := []interop.Key{keys(t).aes256}
	var jobs []interop.Job
	for _, c := range cs {
		jobs = append(jobs,
			interop.Job{ID: c.tc.Name + "/new", Op: "decrypt", In: c.path, Out: c.path + ".pt", Keys: c.tc.DecKeys},
			interop.Job{ID: c.tc.Name + "/old", Op: "decrypt", In: c.path, Out: c.path + ".old.pt", Keys: old})
	}
	results, err := js.Batch(context.Background(), dir, jobs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		r := results[c.tc.Name+"/new"]
		if !r.OK {
			t.Fatalf("%s: js decrypt under the new key group failed: %s", c.tc.Name, r.Error)
		}
		pt, err := os.ReadFile(c.path + ".pt")
		if err != nil {
			t.Fatal(err)
		}
		if err := check(c.tc, pt, jsInfo(t, r)); err != nil {
			t.Fatalf("%s: js: %v", c.tc.Name, err)
		}
		if o := results[c.tc.Name+"/old"]; o.OK || o.ID == "" {
			t.Fatalf("%s: js decrypted it under the old key group (%+v)", c.tc.Name, o)
		}
	}
}
