package executor_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// TestReencryptInPlaceMigration migrates a tree from one KMS key to another
// in place, with a context edit; a second run is all unchanged and makes no
// KMS call; the result decrypts under the new key only.
func TestReencryptInPlaceMigration(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	files := writeTree(t, tree, map[string]int{"a": 5000, "b/c": 0, "b/d": 9000})
	enc := filepath.Join(dir, "enc")
	if r := runWith(t, kmsJob(t, "encrypt", tree, enc, `"`+k.east+`"`, `"`+k.east+`"`, ""), k.options()); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	job := kmsJob(t, "reencrypt", enc, "", `"`+k.new+`"`, `"`+k.east+`"`,
		"  reencrypt: {add: {migrated: \"yes\"}}\n  execution: {concurrency: 2}\n")
	k.emu.ResetCalls()
	r := runWith(t, job, k.options())
	if !r.sum.OK() || r.sum.Done[planner.Reencrypt] != 3 {
		t.Fatalf("reencrypt: %+v %v", r.sum.Done, r.sum.Failed)
	}
	if n := k.emu.CallCount("Decrypt"); n < 3 {
		t.Fatalf("Decrypt calls %d", n)
	}
	k.emu.ResetCalls()
	r = runWith(t, job, k.options())
	if r.plan.HasChanges() || r.sum.Done[planner.Unchanged] != 3 {
		t.Fatalf("second run: %+v", r.plan.Counts())
	}
	for op, n := range k.emu.Calls() {
		if n != 0 && op != "DescribeKey" {
			t.Fatalf("second run called KMS %s %d times", op, n)
		}
	}
	for name, want := range files {
		msg, err := os.ReadFile(filepath.Join(enc, name+".encrypted"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := crypto.ParseHeader(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if len(h.EncryptedDataKeys) != 1 || string(h.EncryptedDataKeys[0].ProviderInfo) != k.new {
			t.Fatalf("%s: EDK %q, want the new key", name, h.EncryptedDataKeys[0].ProviderInfo)
		}
		if h.Context["migrated"] != "yes" || h.Context["tenant"] != "acme" {
			t.Fatalf("%s: context %v", name, h.Context)
		}
		dec := filepath.Join(dir, "dec-"+filepath.Base(name))
		out := runWith(t, kmsJob(t, "decrypt", filepath.Join(enc, name+".encrypted"), dec, `"`+k.new+`"`, `"`+k.new+`"`, ""), k.options())
		if !out.sum.OK() {
			t.Fatal(out.sum.Failed)
		}
		got, _ := os.ReadFile(dec)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: content changed by the migration", name)
		}
	}
}

// TestFailedItemsLeaveNothing: a tampered message fails alone (onError:
// continue), leaves no output under any name, and its source is intact;
// the other items complete.
func TestFailedItemsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	in, enc, dec := filepath.Join(dir, "in"), filepath.Join(dir, "enc"), filepath.Join(dir, "dec")
	writeTree(t, in, map[string]int{"good1": 20000, "bad": 20000, "good2": 10})
	env := map[string]string{"OP": "encrypt", "IN": in, "OUT": enc, "KEY": filepath.Join(dir, "k")}
	if r := run(t, jobFor(t, env)); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	bad := filepath.Join(enc, "bad.encrypted")
	msg, _ := os.ReadFile(bad)
	msg[len(msg)-200] ^= 1 // inside the body, after some frames verified
	os.WriteFile(bad, msg, 0o644)
	env["OP"], env["IN"], env["OUT"] = "decrypt", enc, dec
	r := run(t, jobFor(t, env))
	if len(r.sum.Failed) != 1 || r.sum.Done[planner.Decrypt] != 2 {
		t.Fatalf("want 1 failure and 2 decrypted: %+v %v", r.sum.Done, r.sum.Failed)
	}
	entries, _ := os.ReadDir(dec)
	for _, e := range entries {
		if e.Name() != "good1" && e.Name() != "good2" && e.Name() != sources.StateDir {
			t.Fatalf("unexpected file in the output directory: %s", e.Name())
		}
	}
	if after, _ := os.ReadFile(bad); !bytes.Equal(after, msg) {
		t.Fatal("source changed")
	}
	var failed int
	for _, rec := range r.records {
		if rec.Status == "failed" {
			failed++
			if rec.Error == "" || rec.Input != bad {
				t.Fatalf("failure record %+v", rec)
			}
		}
	}
	if failed != 1 {
		t.Fatalf("%d failure records", failed)
	}
	_ = context.Background
}

// TestReencryptKMSCallCounts: re-encrypting 1,000 items (made under a
// cached data key) with caching costs a handful of KMS calls; without
// caching one Decrypt and one GenerateDataKey per item; a second run
// after success makes none.
func TestReencryptKMSCallCounts(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	tree := map[string]int{}
	for i := range 1000 {
		tree[fmt.Sprintf("d%d/f%04d", i%10, i)] = 100
	}
	writeTree(t, in, tree)
	cache := "  caching: {capacity: 10, maxAge: 5m, maxMessagesEncrypted: 100}\n"
	for _, cached := range []bool{false, true} {
		enc := filepath.Join(dir, fmt.Sprintf("enc-%v", cached))
		if r := runWith(t, kmsJob(t, "encrypt", in, enc, `"`+k.east+`"`, `"`+k.east+`"`, cache), k.options()); !r.sum.OK() {
			t.Fatal(r.sum.Failed)
		}
		extra := ""
		if cached {
			extra = cache
		}
		job := kmsJob(t, "reencrypt", enc, "", `"`+k.new+`"`, `"`+k.east+`"`, extra)
		job.Output.Verify = false // verification would decrypt every new message once more
		k.emu.ResetCalls()
		r := runWith(t, job, k.options())
		if !r.sum.OK() || r.sum.Done[planner.Reencrypt] != 1000 {
			t.Fatalf("cached=%v: %+v %v", cached, r.sum.Done, r.sum.Failed)
		}
		c := k.emu.Calls()
		t.Logf("re-encrypt 1,000 items, caching=%v: Decrypt %d, GenerateDataKey %d", cached, c["Decrypt"], c["GenerateDataKey"])
		if cached && (c["Decrypt"] > 10 || c["GenerateDataKey"] > 10) {
			t.Fatalf("with caching: %v", c)
		}
		if !cached && (c["Decrypt"] != 1000 || c["GenerateDataKey"] != 1000) {
			t.Fatalf("without caching: %v", c)
		}
		k.emu.ResetCalls()
		r = runWith(t, job, k.options())
		if r.plan.HasChanges() {
			t.Fatalf("second run changes %v", r.plan.Counts())
		}
		for op, n := range k.emu.Calls() {
			if n != 0 {
				t.Fatalf("second run called %s %d times", op, n)
			}
		}
	}
}
