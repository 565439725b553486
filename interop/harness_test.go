package interop_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/encjob/encjob/interop"
	"github.com/encjob/encjob/interop/goesdk"
)

// msgInfo is what a decryptor or encryptor reports about a message.
type msgInfo struct {
	Suite       uint16
	Context     map[string]string
	FrameLength int // -1: not reported
}

// impl is an ESDK implementation called in process: encjob or the Go ESDK.
type impl struct {
	name string
	// writesNonFramed: the implementation can encrypt with frame length 0.
	writesNonFramed bool
	encrypt         func(ctx context.Context, c testCase, pt []byte) ([]byte, error)
	decrypt         func(ctx context.Context, c testCase, msg []byte) ([]byte, msgInfo, error)
	// header, when set, parses a message header without keys into the
	// shape the JS peer reports, so both parsers can be compared.
	header func(msg []byte) (interop.Result, error)
}

// sameHeader compares the header fields the JS ESDK reported with those
// another parser read from the same bytes.
func sameHeader(js, own interop.Result) error {
	type field struct {
		name      string
		js, other any
	}
	edks := func(l []interop.EDK) []string {
		var out []string
		for _, k := range l {
			out = append(out, fmt.Sprintf("%q/%x/%x", k.ProviderID, k.ProviderInfo, k.Ciphertext))
		}
		return out
	}
	for _, f := range []field{
		{"suite", js.Suite, own.Suite},
		{"version", js.Version, own.Version},
		{"message id", fmt.Sprintf("%x", js.MessageID), fmt.Sprintf("%x", own.MessageID)},
		{"frame length", js.FrameLength, own.FrameLength},
		{"content type", js.ContentType, own.ContentType},
		{"context", fmt.Sprint(js.Context), fmt.Sprint(own.Context)},
		{"encrypted data keys", fmt.Sprint(edks(js.EDKs)), fmt.Sprint(edks(own.EDKs))},
		{"commitment key", fmt.Sprintf("%x", js.CommitKey), fmt.Sprintf("%x", own.CommitKey)},
	} {
		if f.js != f.other {
			return fmt.Errorf("header %s: js reports %v, the other parser %v", f.name, f.js, f.other)
		}
	}
	return nil
}

var goESDK = impl{
	name: "goesdk",
	encrypt: func(ctx context.Context, c testCase, pt []byte) ([]byte, error) {
		msg, _, err := goesdk.Encrypt(ctx, c.EncKeys, pt, goesdk.Options{Suite: c.Suite, FrameLength: int64(c.Frame), Context: c.Context})
		return msg, err
	},
	decrypt: func(ctx context.Context, c testCase, msg []byte) ([]byte, msgInfo, error) {
		pt, r, err := goesdk.Decrypt(ctx, c.DecKeys, msg, goesdk.Options{})
		return pt, msgInfo{Suite: r.Suite, Context: r.Context, FrameLength: -1}, err
	},
}

// check compares what a decryptor produced and reported with the case.
func check(c testCase, pt []byte, info msgInfo) error {
	if err := comparePlaintext(pt, c.plaintext()); err != nil {
		return err
	}
	if info.Suite != c.Suite {
		return fmt.Errorf("suite is 0x%04X, want %s", info.Suite, c.suiteHex())
	}
	if info.FrameLength >= 0 && info.FrameLength != c.Frame {
		return fmt.Errorf("frame length is %d, want %d", info.FrameLength, c.Frame)
	}
	return c.checkContext(info.Context)
}

// crossJS runs x against the JS peer in both directions: x encrypts every
// case (framed, and non-framed when x can) for JS to decrypt, and JS
// encrypts every framed case for x to decrypt. The JS side runs in at most
// two node processes.
func crossJS(t *testing.T, x impl) {
	js := jsPeer(t)
	ctx := context.Background()
	dir := t.TempDir()
	framed := framedCases(t)
	toJS := framed
	if x.writesNonFramed {
		toJS = append(append([]testCase{}, framed...), nonFramedCases(t)...)
	}
	revert, canPKCS1 := pkcs1Flags(t, js)

	type pending struct {
		c    testCase
		job  string
		err  error  // x failed to encrypt
		skip string // why JS cannot decrypt this case here
	}
	var jobs, pkcs1Jobs []interop.Job
	var xToJS, jsToX []pending
	for _, c := range toJS {
		p := pending{c: c, job: x.name + "-to-js-" + c.Name}
		ct, err := x.encrypt(ctx, c, c.plaintext())
		if err != nil {
			p.err = err
			xToJS = append(xToJS, p)
			continue
		}
		in := filepath.Join(dir, p.job+".ct")
		if err := os.WriteFile(in, ct, 0o600); err != nil {
			t.Fatal(err)
		}
		j := interop.Job{ID: p.job, Op: "decrypt", In: in, Out: filepath.Join(dir, p.job+".pt"), Keys: c.DecKeys}
		if c.pkcs1Decrypt() {
			if !canPKCS1 {
				p.skip = "this Node.js refuses RSA PKCS#1 v1.5 decryption and lacks " + interop.SecurityRevertPKCS1
				xToJS = append(xToJS, p)
				continue
			}
			pkcs1Jobs = append(pkcs1Jobs, j)
		} else {
			jobs = append(jobs, j)
		}
		xToJS = append(xToJS, p)
	}
	for _, c := range framed {
		p := pending{c: c, job: "js-to-" + x.name + "-" + c.Name}
		in := filepath.Join(dir, p.job+".pt")
		if err := os.WriteFile(in, c.plaintext(), 0o600); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, interop.Job{ID: p.job, Op: "encrypt", In: in, Out: filepath.Join(dir, p.job+".ct"),
			Keys: c.EncKeys, Suite: c.suiteHex(), FrameLength: intPtr(c.Frame), Context: c.Context})
		jsToX = append(jsToX, p)
	}
	results, err := js.Batch(ctx, dir, jobs)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkcs1Jobs) > 0 {
		more, err := js.Batch(ctx, dir, pkcs1Jobs, revert...)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range more {
			results[k] = v
		}
	}

	t.Run(x.name+"-to-js", func(t *testing.T) {
		for _, p := range xToJS {
			t.Run(p.c.Name, func(t *testing.T) {
				if p.err != nil {
					t.Fatalf("%s encrypt: %v", x.name, p.err)
				}
				if p.skip != "" {
					t.Skip(p.skip)
				}
				r := results[p.job]
				if !r.OK {
					t.Fatalf("js decrypt of the %s message failed: %s", x.name, r.Error)
				}
				pt, err := os.ReadFile(filepath.Join(dir, p.job+".pt"))
				if err != nil {
					t.Fatal(err)
				}
				if err := check(p.c, pt, jsInfo(t, r)); err != nil {
					t.Fatalf("js decrypt of the %s message: %v", x.name, err)
				}
				wantCT := 2
				if p.c.Frame == 0 {
					wantCT = 1
				}
				if r.ContentType != wantCT {
					t.Fatalf("js reports content type %d, want %d", r.ContentType, wantCT)
				}
				compareHeaders(t, x, r, filepath.Join(dir, p.job+".ct"))
			})
		}
	})
	t.Run("js-to-"+x.name, func(t *testing.T) {
		for _, p := range jsToX {
			t.Run(p.c.Name, func(t *testing.T) {
				r := results[p.job]
				if !r.OK {
					t.Fatalf("js encrypt failed: %s", r.Error)
				}
				if err := p.c.checkContext(r.Context); err != nil {
					t.Fatalf("js encrypt reports: %v", err)
				}
				ct, err := os.ReadFile(filepath.Join(dir, p.job+".ct"))
				if err != nil {
					t.Fatal(err)
				}
				compareHeaders(t, x, r, filepath.Join(dir, p.job+".ct"))
				pt, info, err := x.decrypt(ctx, p.c, ct)
				if err != nil {
					t.Fatalf("%s decrypt of the js message: %v", x.name, err)
				}
				if err := check(p.c, pt, info); err != nil {
					t.Fatalf("%s decrypt of the js message: %v", x.name, err)
				}
			})
		}
	})
}

// compareHeaders checks that x parses the message at path into the header
// the JS ESDK reported for it.
func compareHeaders(t *testing.T, x impl, js interop.Result, path string) {
	t.Helper()
	if x.header == nil {
		return
	}
	msg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	own, err := x.header(msg)
	if err != nil {
		t.Fatalf("%s header parse: %v", x.name, err)
	}
	if err := sameHeader(js, own); err != nil {
		t.Fatalf("%s vs js: %v", x.name, err)
	}
}

func jsInfo(t *testing.T, r interop.Result) msgInfo {
	t.Helper()
	var s uint16
	if _, err := fmt.Sscanf(r.Suite, "0x%04X", &s); err != nil {
		t.Fatalf("js reports suite %q: %v", r.Suite, err)
	}
	return msgInfo{Suite: s, Context: r.Context, FrameLength: r.FrameLength}
}

// crossInProcess runs a against b in both directions; a's non-framed
// messages too when a writes them.
func crossInProcess(t *testing.T, a, b impl) {
	ctx := context.Background()
	framed := framedCases(t)
	run := func(from, to impl, cases []testCase) {
		t.Run(from.name+"-to-"+to.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					ct, err := from.encrypt(ctx, c, c.plaintext())
					if err != nil {
						t.Fatalf("%s encrypt: %v", from.name, err)
					}
					pt, info, err := to.decrypt(ctx, c, ct)
					if err != nil {
						t.Fatalf("%s decrypt of the %s message: %v", to.name, from.name, err)
					}
					if err := check(c, pt, info); err != nil {
						t.Fatalf("%s decrypt of the %s message: %v", to.name, from.name, err)
					}
				})
			}
		})
	}
	aCases := framed
	if a.writesNonFramed {
		aCases = append(append([]testCase{}, framed...), nonFramedCases(t)...)
	}
	run(a, b, aCases)
	bCases := framed
	if b.writesNonFramed {
		bCases = append(append([]testCase{}, framed...), nonFramedCases(t)...)
	}
	run(b, a, bCases)
}

// TestPeersAgree proves the two official SDKs and the harness against each
// other, independently of encjob: the Go ESDK encrypts for JS and the
// other way round.
func TestPeersAgree(t *testing.T) {
	t.Parallel()
	crossJS(t, goESDK)
}
