package interop_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/interop"
	"github.com/encjob/encjob/interop/goesdk"
)

// rewrapCase is one source message and its rewrap: Old holds the source's
// keys and context, New (a testCase, so the shared checks apply) the keys
// and context of the rewrapped message.
type rewrapCase struct {
	New      testCase
	OldKeys  []interop.Key
	OldCtx   map[string]string
	Producer string // "encjob" or "goesdk": who wrote the source
	src, msg []byte
}

// rewrapCases: every suite; frame lengths 4096 and 7 with sizes around
// the frame boundaries, and non-framed bodies; sources written by encjob
// and by the Go ESDK; the new key group is one AES key, or an AES key and
// an RSA key (a multi-keyring with a generator).
func rewrapCases(t *testing.T) []*rewrapCase {
	f := keys(t)
	mk := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	newAES := interop.AESKey("encjob-interop", "aes-256-new", mk(32))
	newRSA := f.rsa(t, 2048, "oaep-sha256")
	oldCtx := maps.Clone(nonASCII)
	oldCtx["legacy-id"] = "L-1"
	newCtx := maps.Clone(nonASCII)
	newCtx["rotated-by"] = "encjob rewrap"
	var cs []*rewrapCase
	for _, s := range allSuites {
		for _, fs := range []struct {
			frame int
			sizes []int
		}{{4096, []int{0, 1, 4095, 4096, 4097}}, {7, []int{6, 7, 8, 50}}, {0, []int{0, 1, 4097}}} {
			for i, n := range fs.sizes {
				c := &rewrapCase{OldKeys: []interop.Key{f.aes256}, OldCtx: oldCtx, Producer: "encjob"}
				newKeys := []interop.Key{newAES}
				if i%2 == 1 {
					newKeys = []interop.Key{newAES, newRSA}
				}
				if fs.frame != 0 && i%2 == 0 {
					c.Producer = "goesdk"
				}
				c.New = testCase{Name: fmt.Sprintf("rewrap-%04X-frame-%d-size-%d-from-%s", s, fs.frame, n, c.Producer),
					Suite: s, Frame: fs.frame, Size: n, Context: newCtx, EncKeys: newKeys, DecKeys: newKeys[len(newKeys)-1:]}
				cs = append(cs, c)
			}
		}
	}
	return cs
}

// produce writes the source message and rewraps it with encjob, checking
// that the body bytes are the source's.
func (c *rewrapCase) produce(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	pt := c.New.plaintext()
	src := testCase{Name: c.New.Name, Suite: c.New.Suite, Frame: c.New.Frame, Size: c.New.Size, Context: c.OldCtx, EncKeys: c.OldKeys}
	var err error
	if c.Producer == "goesdk" {
		c.src, _, err = goesdk.Encrypt(ctx, c.OldKeys, pt, goesdk.Options{Suite: src.Suite, FrameLength: int64(src.Frame), Context: src.Context})
	} else {
		var o crypto.EncryptOptions
		if o, err = encryptOptions(src); err == nil {
			c.src, err = crypto.Encrypt(ctx, pt, o)
		}
	}
	if err != nil {
		t.Fatalf("%s: writing the source: %v", c.New.Name, err)
	}
	oldKR, err := encjobKeyring(c.OldKeys)
	if err != nil {
		t.Fatal(err)
	}
	newKR, err := encjobKeyring(c.New.EncKeys)
	if err != nil {
		t.Fatal(err)
	}
	pol := crypto.RequireEncryptRequireDecrypt
	if c.New.Suite < 0x0400 {
		pol = crypto.ForbidEncryptAllowDecrypt
	}
	var out bytes.Buffer
	_, _, err = crypto.Rewrap(ctx, &out, bytes.NewReader(c.src), crypto.RewrapOptions{AllowHeaderNonceReuse: true,
		Decrypt: crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(oldKR), CommitmentPolicy: pol}, Keyring: newKR, CommitmentPolicy: pol,
		Context: func(h *crypto.Header) (crypto.EncryptionContext, error) {
			ec := crypto.EncryptionContext{}
			for k, v := range h.Context {
				if k != "legacy-id" && k != "aws-crypto-public-key" {
					ec[k] = v
				}
			}
			ec["rotated-by"] = "encjob rewrap"
			return ec, nil
		}})
	if err != nil {
		t.Fatalf("%s: rewrap: %v", c.New.Name, err)
	}
	c.msg = out.Bytes()
	ob, nb := body(t, c.src), body(t, c.msg)
	if !bytes.Equal(ob, nb) {
		t.Fatalf("%s: the rewrapped body (%d bytes) differs from the source's (%d bytes)", c.New.Name, len(nb), len(ob))
	}
}

// body returns a message's body bytes (between header and footer), found
// by walking its frames.
func body(t *testing.T, msg []byte) []byte {
	t.Helper()
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	b := msg[h.Len():]
	if h.ContentType == crypto.ContentNonFramed {
		return b[:12+8+int(binary.BigEndian.Uint64(b[12:20]))+16]
	}
	off := 0
	for binary.BigEndian.Uint32(b[off:]) != 0xFFFFFFFF {
		off += 4 + 12 + int(h.FrameLength) + 16
	}
	return b[:off+8+12+4+int(binary.BigEndian.Uint32(b[off+20:]))+16]
}

// TestRewrapJS: the AWS Encryption SDK for JavaScript decrypts every
// rewrapped message under the new key group, to the source's plaintext
// and the edited context, and refuses it under the old key group.
func TestRewrapJS(t *testing.T) {
	t.Parallel()
	js := jsPeer(t)
	ctx := context.Background()
	dir := t.TempDir()
	cs := rewrapCases(t)
	var jobs []interop.Job
	for _, c := range cs {
		c.produce(t)
		in := filepath.Join(dir, c.New.Name+".ct")
		if err := os.WriteFile(in, c.msg, 0o600); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs,
			interop.Job{ID: c.New.Name + "/new", Op: "decrypt", In: in, Out: filepath.Join(dir, c.New.Name+".pt"), Keys: c.New.DecKeys},
			interop.Job{ID: c.New.Name + "/old", Op: "decrypt", In: in, Out: filepath.Join(dir, c.New.Name+".old.pt"), Keys: c.OldKeys})
	}
	results, err := js.Batch(ctx, dir, jobs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		t.Run(c.New.Name, func(t *testing.T) {
			r := results[c.New.Name+"/new"]
			if !r.OK {
				t.Fatalf("js decrypt under the new key group failed: %s", r.Error)
			}
			pt, err := os.ReadFile(filepath.Join(dir, c.New.Name+".pt"))
			if err != nil {
				t.Fatal(err)
			}
			if err := check(c.New, pt, jsInfo(t, r)); err != nil {
				t.Fatalf("js decrypt under the new key group: %v", err)
			}
			compareHeaders(t, encjobStreaming, r, filepath.Join(dir, c.New.Name+".ct"))
			if old := results[c.New.Name+"/old"]; old.OK || old.ID == "" {
				t.Fatalf("js decrypted the rewrapped message under the old key group (result %+v)", old)
			}
			if _, err := os.Stat(filepath.Join(dir, c.New.Name+".old.pt")); err == nil {
				if b, _ := os.ReadFile(filepath.Join(dir, c.New.Name+".old.pt")); len(b) > 0 {
					t.Fatal("js wrote plaintext under the old key group")
				}
			}
		})
	}
}

// TestRewrapGoESDK: the AWS Encryption SDK for Go decrypts every rewrapped
// message under the new key group, and not under the old one.
func TestRewrapGoESDK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range rewrapCases(t) {
		t.Run(c.New.Name, func(t *testing.T) {
			c.produce(t)
			pt, r, err := goesdk.Decrypt(ctx, c.New.DecKeys, c.msg, goesdk.Options{})
			if err != nil {
				t.Fatalf("go esdk decrypt under the new key group: %v", err)
			}
			if err := check(c.New, pt, msgInfo{Suite: r.Suite, Context: r.Context, FrameLength: -1}); err != nil {
				t.Fatalf("go esdk decrypt under the new key group: %v", err)
			}
			if _, _, err := goesdk.Decrypt(ctx, c.OldKeys, c.msg, goesdk.Options{}); err == nil {
				t.Fatal("go esdk decrypted the rewrapped message under the old key group")
			}
		})
	}
}
