package executor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources/s3test"
	"github.com/encjob/encjob/spec"
)

// runLogged is runWith with the metadata log captured.
func runLogged(t *testing.T, job *spec.Job, o planner.Options) runOut {
	t.Helper()
	ctx := context.Background()
	rt, err := planner.Prepare(ctx, job, o)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{Name: "test"})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var meta bytes.Buffer
	sum, err := executor.Apply(ctx, rt, p, executor.Options{Metadata: executor.NewMetadataLog(&meta)})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	var recs []executor.Record
	for _, line := range strings.Split(strings.TrimSpace(meta.String()), "\n") {
		var r executor.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("metadata line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return runOut{p, sum, recs}
}

// messageBody returns the bytes between a message's header and its footer.
func messageBody(t *testing.T, msg []byte) []byte {
	t.Helper()
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	b := msg[h.Len():]
	off := 0
	for binary.BigEndian.Uint32(b[off:]) != 0xFFFFFFFF {
		off += 4 + 12 + int(h.FrameLength) + 16
	}
	off += 8 + 12 + 4 + int(binary.BigEndian.Uint32(b[off+20:])) + 16
	return b[:off]
}

// TestRewrapInPlaceMigration: reencrypt.mode rewrap moves a tree from one
// KMS key to another in place (output.verify on): the plan and the
// metadata log say "rewrap" (symbol ^), each message keeps its message id
// and body bytes, gets the new key and the edited context, decrypts to the
// same content under the new key and no longer under the old one; a
// second run is all unchanged without a KMS call.
func TestRewrapInPlaceMigration(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	files := writeTree(t, tree, map[string]int{"a": 5000, "b/c": 0, "b/d": 9000})
	enc := filepath.Join(dir, "enc")
	if r := runWith(t, kmsJob(t, "encrypt", tree, enc, `"`+k.east+`"`, `"`+k.east+`"`, ""), k.options()); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	before := map[string][]byte{}
	for name := range files {
		before[name], _ = os.ReadFile(filepath.Join(enc, name+".encrypted"))
	}
	job := kmsJob(t, "reencrypt", enc, "", `"`+k.new+`"`, `"`+k.east+`"`,
		"  reencrypt: {mode: rewrap, allowHeaderNonceReuse: true, add: {migrated: \"yes\"}}\n")
	r := runLogged(t, job, k.options())
	if !r.sum.OK() || r.sum.Done[planner.Rewrap] != 3 || planner.Rewrap.Symbol() != "^" {
		t.Fatalf("rewrap: %+v %v", r.sum.Done, r.sum.Failed)
	}
	for _, rec := range r.records {
		if rec.Action == planner.Skip && rec.Reason == "encjob state directory" {
			continue
		}
		if rec.Action != planner.Rewrap || rec.Status != "done" || rec.Mode != "reencrypt" {
			t.Fatalf("metadata record %+v", rec)
		}
	}
	k.emu.ResetCalls()
	r2 := runWith(t, job, k.options())
	if r2.plan.HasChanges() || r2.sum.Done[planner.Unchanged] != 3 {
		t.Fatalf("second run: %+v", r2.plan.Counts())
	}
	for op, n := range k.emu.Calls() {
		if n != 0 && op != "DescribeKey" {
			t.Fatalf("second run called KMS %s %d times", op, n)
		}
	}
	for name, want := range files {
		path := filepath.Join(enc, name+".encrypted")
		msg, _ := os.ReadFile(path)
		oh, _ := crypto.ParseHeader(bytes.NewReader(before[name]))
		h, err := crypto.ParseHeader(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h.MessageID, oh.MessageID) || !bytes.Equal(messageBody(t, msg), messageBody(t, before[name])) {
			t.Fatalf("%s: message id or body bytes changed", name)
		}
		if len(h.EncryptedDataKeys) != 1 || string(h.EncryptedDataKeys[0].ProviderInfo) != k.new {
			t.Fatalf("%s: EDK %q, want the new key", name, h.EncryptedDataKeys[0].ProviderInfo)
		}
		if h.Context["migrated"] != "yes" || h.Context["tenant"] != "acme" {
			t.Fatalf("%s: context %v", name, h.Context)
		}
		dec := filepath.Join(dir, "dec-"+filepath.Base(name))
		out := runWith(t, kmsJob(t, "decrypt", path, dec, `"`+k.new+`"`, `"`+k.new+`"`, ""), k.options())
		if !out.sum.OK() {
			t.Fatal(out.sum.Failed)
		}
		if got, _ := os.ReadFile(dec); !bytes.Equal(got, want) {
			t.Fatalf("%s: content changed by the rewrap", name)
		}
		old := runWith(t, kmsJob(t, "decrypt", path, dec+".old", `"`+k.east+`"`, `"`+k.east+`"`, ""), k.options())
		if old.sum.OK() {
			t.Fatalf("%s: the old key still decrypts", name)
		}
		if _, err := os.Stat(dec + ".old"); err == nil {
			t.Fatal("a failed decryption left output")
		}
	}
}

// TestRewrapRefusesTampered: a signed source whose body was changed is not
// rewrapped (its old signature does not verify): the item fails, the
// source is untouched, and nothing else is left behind; the other items
// are rewrapped.
func TestRewrapRefusesTampered(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree, map[string]int{"good": 20000, "bad": 20000})
	enc := filepath.Join(dir, "enc")
	if r := runWith(t, kmsJob(t, "encrypt", tree, enc, `"`+k.east+`"`, `"`+k.east+`"`, ""), k.options()); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	bad := filepath.Join(enc, "bad.encrypted")
	msg, _ := os.ReadFile(bad)
	msg[len(msg)-300] ^= 1 // a frame's ciphertext: only the signature (or its tag) can tell
	os.WriteFile(bad, msg, 0o644)
	job := kmsJob(t, "reencrypt", enc, "", `"`+k.new+`"`, `"`+k.east+`"`, "  reencrypt: {mode: rewrap, allowHeaderNonceReuse: true}\n")
	job.Output.Verify = false // the old signature alone must refuse it
	r := runLogged(t, job, k.options())
	if len(r.sum.Failed) != 1 || r.sum.Done[planner.Rewrap] != 1 {
		t.Fatalf("want 1 failure and 1 rewrapped: %+v %v", r.sum.Done, r.sum.Failed)
	}
	if !strings.Contains(r.sum.Failed[0].Err.Error(), "authentication") {
		t.Fatalf("failure: %v", r.sum.Failed[0].Err)
	}
	if after, _ := os.ReadFile(bad); !bytes.Equal(after, msg) {
		t.Fatal("tampered source changed")
	}
	entries, _ := os.ReadDir(enc)
	for _, e := range entries {
		if e.Name() != "good.encrypted" && e.Name() != "bad.encrypted" && !strings.HasPrefix(e.Name(), ".encjob-state") {
			t.Fatalf("left behind: %s", e.Name())
		}
	}
}

// TestRewrapKeepsSuitePolicy: a rewrap keeps each message's suite, so a
// commitment policy that forbids writing it makes the item an error at
// plan time, naming the suite and the way out.
func TestRewrapKeepsSuitePolicy(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree, map[string]int{"a": 100})
	enc := filepath.Join(dir, "enc")
	if r := runWith(t, kmsJob(t, "encrypt", tree, enc, `"`+k.east+`"`, `"`+k.east+`"`, ""), k.options()); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	legacy := "  commitmentPolicy: forbid-encrypt-allow-decrypt\n"
	job := kmsJob(t, "reencrypt", enc, "", `"`+k.new+`"`, `"`+k.east+`"`, "  reencrypt: {mode: rewrap, allowHeaderNonceReuse: true}\n"+legacy)
	r := runWith(t, job, k.options())
	var reason string
	for _, it := range r.plan.Items {
		if it.Key == "a.encrypted" {
			reason = it.Reason
		}
	}
	if r.plan.Counts()[planner.Error] != 1 || !strings.Contains(reason, "0x0578") || !strings.Contains(reason, "mode full") {
		t.Fatalf("plan: %+v", r.plan.Items)
	}
	job = kmsJob(t, "reencrypt", enc, "", `"`+k.new+`"`, `"`+k.east+`"`, "  reencrypt: {mode: rewrap, allowHeaderNonceReuse: true}\n")
	if r := runWith(t, job, k.options()); !r.sum.OK() || r.sum.Done[planner.Rewrap] != 1 {
		t.Fatalf("rewrap under the legacy policy: %+v %v", r.sum.Done, r.sum.Failed)
	}
}

// TestRewrapS3InPlace: objects on the test S3 server (one above the
// multipart threshold) are rewrapped in place: same message id and body,
// new key, verify on, and the second run is unchanged.
func TestRewrapS3InPlace(t *testing.T) {
	k := startKMS(t)
	srv := s3test.Start(t)
	srv.CreateBucket(t, "rewrap")
	ctx := context.Background()
	want := map[string][]byte{}
	for i, n := range []int{0, 4096, 70000, 20 << 20} {
		key := fmt.Sprintf("p/obj-%d", i)
		want[key] = make([]byte, n)
		rand.Read(want[key])
		if _, err := srv.Client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("rewrap"), Key: aws.String(key), Body: bytes.NewReader(want[key])}); err != nil {
			t.Fatal(err)
		}
	}
	o := k.options()
	o.S3Client = srv.Client
	if r := runWith(t, kmsJob(t, "encrypt", "s3://rewrap/p/", "s3://rewrap/enc/", `"`+k.east+`"`, `"`+k.east+`"`, ""), o); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	get := func(key string) []byte {
		t.Helper()
		obj, err := srv.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("rewrap"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Body.Close()
		b, err := io.ReadAll(obj.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	before := map[string][]byte{}
	for key := range want {
		before[key] = get("enc/" + strings.TrimPrefix(key, "p/") + ".encrypted")
	}
	job := kmsJob(t, "reencrypt", "s3://rewrap/enc/", "", `"`+k.new+`"`, `"`+k.east+`"`, "  reencrypt: {mode: rewrap, allowHeaderNonceReuse: true}\n")
	r := runWith(t, job, o)
	if !r.sum.OK() || r.sum.Done[planner.Rewrap] != len(want) {
		t.Fatalf("rewrap: %+v %v", r.sum.Done, r.sum.Failed)
	}
	if r := runWith(t, job, o); r.plan.HasChanges() {
		t.Fatalf("second run: %+v", r.plan.Counts())
	}
	local := t.TempDir()
	if r := runWith(t, kmsJob(t, "decrypt", "s3://rewrap/enc/", local, `"`+k.new+`"`, `"`+k.new+`"`, ""), o); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	for key, pt := range want {
		name := strings.TrimPrefix(key, "p/") + ".encrypted"
		msg := get("enc/" + name)
		oh, _ := crypto.ParseHeader(bytes.NewReader(before[key]))
		h, err := crypto.ParseHeader(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h.MessageID, oh.MessageID) || !bytes.Equal(messageBody(t, msg), messageBody(t, before[key])) {
			t.Fatalf("%s: message id or body changed", key)
		}
		if string(h.EncryptedDataKeys[0].ProviderInfo) != k.new {
			t.Fatalf("%s: not under the new key", key)
		}
		if got, err := os.ReadFile(filepath.Join(local, strings.TrimSuffix(name, ".encrypted"))); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: content: %v", key, err)
		}
	}
}

// TestRewrapV2GuardPlansFull: without reencrypt.allowHeaderNonceReuse,
// mode rewrap re-encrypts message format v2 items (0x0478 and 0x0578) in
// full - plan ~ with the reason, log action reencrypt, a new message id,
// the suite kept - while a v1 item (0x0178, under the legacy policy) is
// rewrapped; a second run is unchanged. With the opt-in, v2 items plan ^.
// A saved plan edited to rewrap a v2 item without the opt-in rewraps
// nothing.
func TestRewrapV2GuardPlansFull(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	legacy := "  commitmentPolicy: forbid-encrypt-allow-decrypt\n"
	encrypted := func(enc, id string) {
		tree := filepath.Join(dir, "plain-"+id)
		writeTree(t, tree, map[string]int{"m-" + id: 3000})
		job := kmsJob(t, "encrypt", tree, enc, `"`+k.east+`"`, `"`+k.east+`"`, "")
		job.Encrypt.Algorithm = id
		if id == "0x0178" {
			job.CommitmentPolicy = "forbid-encrypt-allow-decrypt"
		}
		if r := runWith(t, job, k.options()); !r.sum.OK() {
			t.Fatal(r.sum.Failed)
		}
	}
	v2, v1 := filepath.Join(dir, "v2"), filepath.Join(dir, "v1")
	encrypted(v2, "0x0478")
	encrypted(v2, "0x0578")
	encrypted(v1, "0x0178")
	header := func(enc, id string) *crypto.Header {
		msg, _ := os.ReadFile(filepath.Join(enc, "m-"+id+".encrypted"))
		h, err := crypto.ParseHeader(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	before := map[string]*crypto.Header{"0x0478": header(v2, "0x0478"), "0x0578": header(v2, "0x0578"), "0x0178": header(v1, "0x0178")}
	check := func(r runOut, want planner.Action) {
		t.Helper()
		if !r.sum.OK() {
			t.Fatal(r.sum.Failed)
		}
		n := 0
		for _, it := range r.plan.Items {
			if it.Action == planner.Skip {
				continue
			}
			n++
			if it.Action != want || (want == planner.Reencrypt) != strings.Contains(it.Reason, "header nonce") ||
				(want == planner.Reencrypt && !strings.Contains(it.Reason, "allowHeaderNonceReuse")) {
				t.Fatalf("%s: %s %q, want %s", it.Key, it.Action, it.Reason, want)
			}
		}
		for _, rec := range r.records {
			if rec.Action != planner.Skip && (rec.Action != want || rec.Status != "done") {
				t.Fatalf("metadata record %+v, want %s", rec, want)
			}
		}
		if n == 0 {
			t.Fatal("no item planned")
		}
	}
	job := kmsJob(t, "reencrypt", v2, "", `"`+k.new+`"`, `"`+k.east+`"`, "  reencrypt: {mode: rewrap}\n")
	check(runLogged(t, job, k.options()), planner.Reencrypt)
	check(runLogged(t, kmsJob(t, "reencrypt", v1, "", `"`+k.new+`"`, `"`+k.east+`"`, "  reencrypt: {mode: rewrap}\n"+legacy), k.options()), planner.Rewrap)
	for id, old := range before {
		enc := v2
		if id == "0x0178" {
			enc = v1
		}
		h := header(enc, id)
		if kept := bytes.Equal(h.MessageID, old.MessageID); kept != (id == "0x0178") || h.Suite != old.Suite {
			t.Fatalf("%s: message id kept %v, suite %s", id, kept, h.Suite.Hex())
		}
	}
	if r := runWith(t, job, k.options()); r.plan.HasChanges() {
		t.Fatalf("second run: %+v", r.plan.Counts())
	}

	// Back to the old key: with the opt-in the v2 items plan ^.
	back := kmsJob(t, "reencrypt", v2, "", `"`+k.east+`"`, `"`+k.new+`"`, "  reencrypt: {mode: rewrap, allowHeaderNonceReuse: true}\n")
	check(runLogged(t, back, k.options()), planner.Rewrap)

	// An edited saved plan: ^ for a v2 item (claiming a v1 suite),
	// without the opt-in.
	ctx := context.Background()
	rt, err := planner.Prepare(ctx, job, k.options())
	if err != nil {
		t.Fatal(err)
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{Name: "edited"})
	if err != nil {
		t.Fatal(err)
	}
	var saved bytes.Buffer
	for i := range p.Items {
		if p.Items[i].Action == planner.Reencrypt {
			p.Items[i].Action, p.Items[i].Suite, p.Items[i].Reason = planner.Rewrap, "0x0178", ""
		}
	}
	p.Write(&saved)
	edited, err := planner.Read(&saved)
	if err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join(v2, "m-0x0578.encrypted")
	was, _ := os.ReadFile(msg)
	sum, err := executor.Apply(ctx, rt, edited, executor.Options{})
	if err == nil {
		for _, f := range sum.Failed {
			if !errors.Is(f.Err, crypto.ErrHeaderNonceReuse) {
				t.Fatalf("%s failed with %v", f.Item.Key, f.Err)
			}
		}
		if len(sum.Failed) != 2 || sum.Done[planner.Rewrap] != 0 {
			t.Fatalf("edited plan applied: %+v %v", sum.Done, sum.Failed)
		}
	}
	if now, _ := os.ReadFile(msg); !bytes.Equal(now, was) {
		t.Fatal("the edited plan changed the v2 message")
	}
}
