package executor_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources/s3test"
)

// headerAndBody returns a message's header and the SHA-256 of everything
// after it, streaming.
func headerAndBody(t *testing.T, r io.Reader) (*crypto.Header, []byte) {
	t.Helper()
	br := bufio.NewReader(r)
	h, err := crypto.ParseHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.New()
	if _, err := io.Copy(d, br); err != nil {
		t.Fatal(err)
	}
	return h, d.Sum(nil)
}

func fileHeaderAndBody(t *testing.T, path string) (*crypto.Header, []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return headerAndBody(t, f)
}

// TestRewrapInStorageLocal: unsigned rewraps of local files (0x0478 with
// the opt-in, 0x0178 under the legacy policy; to another directory and in
// place) copy the body with copy_file_range: every record says the whole
// body was copied in storage, the body bytes and message id are the
// source's, the new key group decrypts to the content, the old one no
// longer does. Output verification (which reads every byte) streams
// instead, and says so by copying nothing in storage.
func TestRewrapInStorageLocal(t *testing.T) {
	k := startKMS(t)
	for _, c := range []struct{ suite, policy, extra string }{
		{"0x0478", "", ", allowHeaderNonceReuse: true"},
		{"0x0178", "forbid-encrypt-allow-decrypt", ""},
	} {
		for _, inPlace := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/inplace=%v", c.suite, inPlace), func(t *testing.T) {
				dir := t.TempDir()
				files := writeTree(t, filepath.Join(dir, "plain"), map[string]int{"empty": 0, "small": 100, "big": 3<<20 + 17})
				enc := filepath.Join(dir, "enc")
				job := kmsJob(t, "encrypt", filepath.Join(dir, "plain"), enc, `"`+k.east+`"`, `"`+k.east+`"`, "")
				job.Encrypt.Algorithm, job.CommitmentPolicy = c.suite, c.policy
				if r := runWith(t, job, k.options()); !r.sum.OK() {
					t.Fatal(r.sum.Failed)
				}
				type state struct {
					h    *crypto.Header
					body []byte
					size int64
				}
				before := map[string]state{}
				for name := range files {
					p := filepath.Join(enc, name+".encrypted")
					h, b := fileHeaderAndBody(t, p)
					fi, _ := os.Stat(p)
					before[name] = state{h, b, fi.Size()}
				}
				out := filepath.Join(dir, "out")
				if inPlace {
					out = ""
				}
				policy := ""
				if c.policy != "" {
					policy = "  commitmentPolicy: " + c.policy + "\n"
				}
				rj := kmsJob(t, "reencrypt", enc, out, `"`+k.new+`"`, `"`+k.east+`"`, "  reencrypt: {mode: rewrap"+c.extra+"}\n"+policy)
				rj.Output.Verify = false
				r := runLogged(t, rj, k.options())
				if !r.sum.OK() || r.sum.Done[planner.Rewrap] != 3 {
					t.Fatalf("rewrap: %+v %v", r.sum.Done, r.sum.Failed)
				}
				root := enc
				if !inPlace {
					root = out
				}
				for _, rec := range r.records {
					if rec.Action != planner.Rewrap {
						continue
					}
					name := strings.TrimSuffix(filepath.Base(rec.Item), ".encrypted")
					b := before[name]
					if body := b.size - int64(b.h.Len()); rec.BytesInStorage != body || body == 0 {
						t.Fatalf("%s: %d bytes copied in storage, want the body's %d", name, rec.BytesInStorage, body)
					}
					h, body := fileHeaderAndBody(t, filepath.Join(root, name+".encrypted"))
					if !bytes.Equal(h.MessageID, b.h.MessageID) || !bytes.Equal(body, b.body) || h.Suite != b.h.Suite {
						t.Fatalf("%s: message id, suite or body changed", name)
					}
					if string(h.EncryptedDataKeys[0].ProviderInfo) != k.new || len(h.EncryptedDataKeys) != 1 {
						t.Fatalf("%s: EDKs %+v", name, h.EncryptedDataKeys)
					}
				}
				dec := filepath.Join(dir, "dec")
				dj := kmsJob(t, "decrypt", root, dec, `"`+k.new+`"`, `"`+k.new+`"`, policy)
				if r := runWith(t, dj, k.options()); !r.sum.OK() {
					t.Fatal(r.sum.Failed)
				}
				for name, want := range files {
					if got, err := os.ReadFile(filepath.Join(dec, name)); err != nil || !bytes.Equal(got, want) {
						t.Fatalf("%s: content: %v", name, err)
					}
				}
				oj := kmsJob(t, "decrypt", root, filepath.Join(dir, "old"), `"`+k.east+`"`, `"`+k.east+`"`, policy)
				if r := runWith(t, oj, k.options()); r.sum.OK() || len(r.sum.Failed) != 3 {
					t.Fatalf("the old key still decrypts: %+v", r.sum.Done)
				}
				// With verify the same rewrap streams (and verifies).
				back := kmsJob(t, "reencrypt", root, "", `"`+k.east+`"`, `"`+k.new+`"`, "  reencrypt: {mode: rewrap"+c.extra+"}\n"+policy)
				rb := runLogged(t, back, k.options())
				if !rb.sum.OK() || rb.sum.Done[planner.Rewrap] != 3 {
					t.Fatalf("rewrap back: %+v %v", rb.sum.Done, rb.sum.Failed)
				}
				for _, rec := range rb.records {
					if rec.BytesInStorage != 0 {
						t.Fatalf("verified rewrap copied in storage: %+v", rec)
					}
				}
			})
		}
	}
}

// TestRewrapInStorageS3: an unsigned rewrap of S3 objects in place on the
// test S3 server, through a client that counts every body byte: the large
// object's body is copied by the server (UploadPartCopy) - less than 10%
// of its bytes pass through the client, all of them the 5 MiB first part
// and the header - a 7 MiB one copies its tail, and one below the 5 MiB
// part minimum is rewritten whole. Each keeps its message id and body
// bytes and decrypts under the new key only.
func TestRewrapInStorageS3(t *testing.T) {
	k := startKMS(t)
	srv := s3test.Start(t)
	srv.CreateBucket(t, "rewrap-storage")
	ctx := context.Background()
	dir := t.TempDir()
	sizes := map[string]int64{"large": 120 << 20, "medium": 7 << 20, "small": 1 << 20}
	want := map[string][]byte{}
	for name, n := range sizes {
		p := filepath.Join(dir, "plain", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.New()
		rng := rand.NewChaCha8([32]byte{byte(n)})
		if _, err := io.CopyN(io.MultiWriter(f, d), rng, n); err != nil {
			t.Fatal(err)
		}
		f.Close()
		want[name] = d.Sum(nil)
	}
	o := k.options()
	o.S3Client = srv.Client
	job := kmsJob(t, "encrypt", filepath.Join(dir, "plain"), "s3://rewrap-storage/enc/", `"`+k.east+`"`, `"`+k.east+`"`, "")
	job.Encrypt.Algorithm = "0x0478"
	if r := runWith(t, job, o); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	object := func(name string) (*crypto.Header, []byte, int64) {
		t.Helper()
		out, err := srv.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("rewrap-storage"), Key: aws.String("enc/" + name + ".encrypted")})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		h, b := headerAndBody(t, out.Body)
		return h, b, aws.ToInt64(out.ContentLength)
	}
	type state struct {
		h    *crypto.Header
		body []byte
		size int64
	}
	before := map[string]state{}
	for name := range sizes {
		h, b, n := object(name)
		before[name] = state{h, b, n}
	}
	cc, counter := srv.NewCountingClient()
	o.S3Client = cc
	rj := kmsJob(t, "reencrypt", "s3://rewrap-storage/enc/", "", `"`+k.new+`"`, `"`+k.east+`"`, "  reencrypt: {mode: rewrap, allowHeaderNonceReuse: true}\n")
	rj.Output.Verify = false
	r := runLogged(t, rj, o)
	if !r.sum.OK() || r.sum.Done[planner.Rewrap] != 3 {
		t.Fatalf("rewrap: %+v %v", r.sum.Done, r.sum.Failed)
	}
	total := before["large"].size + before["medium"].size + before["small"].size
	// Everything but the large object's body may pass through the
	// client: the small object twice, the first 5 MiB of the others
	// twice, headers, listing.
	through := counter.Total()
	large := before["large"].size
	t.Logf("client bytes %d (sent %d, received %d) for %d object bytes", through, counter.Sent(), counter.Received(), total)
	if budget := 2*(before["small"].size+2*5<<20) + 1<<20; through > budget || float64(through-2*before["small"].size-2*(5<<20)) > 0.10*float64(large) {
		t.Fatalf("%d bytes through the client, more than the budget %d", through, budget)
	}
	for _, rec := range r.records {
		if rec.Action != planner.Rewrap {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(rec.Item), ".encrypted")
		b := before[name]
		body := b.size - int64(b.h.Len())
		switch name {
		case "small":
			if rec.BytesInStorage != 0 {
				t.Fatalf("small: %d bytes copied in storage, want a whole rewrite", rec.BytesInStorage)
			}
		default:
			if rec.BytesInStorage < body-(5<<20) || rec.BytesInStorage >= body {
				t.Fatalf("%s: %d of %d body bytes copied in storage", name, rec.BytesInStorage, body)
			}
		}
		h, nb, _ := object(name)
		if !bytes.Equal(h.MessageID, b.h.MessageID) || !bytes.Equal(nb, b.body) || string(h.EncryptedDataKeys[0].ProviderInfo) != k.new {
			t.Fatalf("%s: message id, body or key wrong", name)
		}
	}
	if r := runWith(t, rj, o); r.plan.HasChanges() {
		t.Fatalf("second run: %+v", r.plan.Counts())
	}
	o.S3Client = srv.Client
	dec := filepath.Join(dir, "dec")
	if r := runWith(t, kmsJob(t, "decrypt", "s3://rewrap-storage/enc/", dec, `"`+k.new+`"`, `"`+k.new+`"`, ""), o); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	for name, sum := range want {
		f, err := os.Open(filepath.Join(dec, name))
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.New()
		io.Copy(d, f)
		f.Close()
		if !bytes.Equal(d.Sum(nil), sum) {
			t.Fatalf("%s: content changed", name)
		}
	}
}

// TestRewrapInStorageRefusesTruncated: an unsigned source cut short (or
// with a byte appended) is refused by the in-storage rewrap, as the
// streamed one refuses it: the item fails as malformed, the file stays as
// it was, nothing else is written.
func TestRewrapInStorageRefusesTruncated(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "plain"), map[string]int{"short": 20000, "long": 20000})
	enc := filepath.Join(dir, "enc")
	job := kmsJob(t, "encrypt", filepath.Join(dir, "plain"), enc, `"`+k.east+`"`, `"`+k.east+`"`, "")
	job.Encrypt.Algorithm = "0x0478"
	if r := runWith(t, job, k.options()); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	short, long := filepath.Join(enc, "short.encrypted"), filepath.Join(enc, "long.encrypted")
	b, _ := os.ReadFile(short)
	os.WriteFile(short, b[:len(b)-1], 0o644)
	b, _ = os.ReadFile(long)
	os.WriteFile(long, append(b, 0), 0o644)
	was := map[string][]byte{}
	for _, p := range []string{short, long} {
		was[p], _ = os.ReadFile(p)
	}
	rj := kmsJob(t, "reencrypt", enc, filepath.Join(dir, "out"), `"`+k.new+`"`, `"`+k.east+`"`, "  reencrypt: {mode: rewrap, allowHeaderNonceReuse: true}\n")
	r := runLogged(t, rj, k.options())
	if len(r.sum.Failed) != 2 || r.sum.Done[planner.Rewrap] != 0 {
		t.Fatalf("want 2 failures: %+v %v", r.sum.Done, r.sum.Failed)
	}
	for _, f := range r.sum.Failed {
		if !errors.Is(f.Err, crypto.ErrMalformed) {
			t.Fatalf("%s: %v, want a malformed message", f.Item.Key, f.Err)
		}
	}
	for p, b := range was {
		if now, _ := os.ReadFile(p); !bytes.Equal(now, b) {
			t.Fatalf("%s changed", p)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "out")); len(entries) > 1 {
		t.Fatalf("output written: %v", entries)
	}
}
