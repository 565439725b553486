package planner

import (
	"errors"
	"testing"

	"github.com/encjob/encjob/spec"
)

// TestDecide covers every branch of the per-item decision, from the facts
// alone (no I/O).
func TestDecide(t *testing.T) {
	boom := errors.New("boom")
	sep := func(f facts) facts { f.overwrite = spec.OverwriteNever; return f }
	for _, tc := range []struct {
		name   string
		f      facts
		action Action
		reason string
	}{
		{"in-place decrypt already done", facts{op: Decrypt, inPlace: true, replaced: true}, Unchanged, "completed by an earlier run (decrypt in place)"},
		{"in-place blob already done", facts{op: Reencrypt, inPlace: true, blobs: true, replaced: true}, Unchanged, "completed by an earlier run (reencrypt in place)"},
		{"replaced ignored for encrypt of files", facts{op: Encrypt, inPlace: true, replaced: true}, Encrypt, ""},
		{"unreadable header on decrypt", facts{op: Decrypt, hdrErr: boom}, Error, "not a readable ESDK message: boom"},
		{"unreadable header on encrypt in place is plaintext", facts{op: Encrypt, inPlace: true, hdrErr: boom}, Encrypt, ""},
		{"in-place reencrypt already migrated", facts{op: Reencrypt, inPlace: true, hdr: true, satisfied: true, group: "new"}, Unchanged, `already under key group "new" with the desired context and suite`},
		{"migrated check precedes context check", facts{op: Reencrypt, inPlace: true, hdr: true, satisfied: true, missingContext: true, group: "g"}, Unchanged, `already under key group "g" with the desired context and suite`},
		{"missing context", facts{op: Decrypt, hdr: true, missingContext: true}, Skip, "Missing encryption context key or value"},
		{"no data key of the decrypt group", facts{op: Reencrypt, hdr: true, notHeld: "no encrypted data key of key group \"old\""}, Error, "no encrypted data key of key group \"old\""},
		{"in-place encrypt already as desired", facts{op: Encrypt, inPlace: true, hdr: true, satisfied: true}, Unchanged, "already encrypted as desired"},
		{"in-place encrypt of a message", facts{op: Encrypt, inPlace: true, hdr: true}, Skip, "already an ESDK message (use operation reencrypt)"},
		{"in-place reencrypt with a note", facts{op: Reencrypt, inPlace: true, hdr: true, note: "suite changed"}, Reencrypt, "suite changed"},
		{"in-place blob", facts{op: Decrypt, inPlace: true, blobs: true}, Decrypt, ""},
		{"stdout", facts{op: Decrypt, stdout: true, hdr: true}, Decrypt, ""},
		{"destination cannot be opened", sep(facts{op: Encrypt, dest: destFacts{openErr: boom}}), Error, "boom"},
		{"destination stat fails", sep(facts{op: Encrypt, dest: destFacts{statErr: boom}}), Error, "destination: boom"},
		{"no output yet", sep(facts{op: Reencrypt, note: "n"}), Reencrypt, "n"},
		{"overwrite always", facts{op: Reencrypt, note: "n", overwrite: spec.OverwriteAlways, dest: destFacts{exists: true}}, Reencrypt, "n; replaces the existing destination (overwrite: always)"},
		{"current output", sep(facts{op: Encrypt, dest: destFacts{exists: true, current: true, why: "completed by an earlier run"}}), Unchanged, "completed by an earlier run"},
		{"current output under if-newer", facts{op: Encrypt, overwrite: spec.OverwriteIfNewer, dest: destFacts{exists: true, current: true, why: "done"}}, Unchanged, "done"},
		{"if-newer replaces a stale output", facts{op: Decrypt, overwrite: spec.OverwriteIfNewer, hdr: true, dest: destFacts{exists: true, why: "stale"}}, Decrypt, "replaces the existing destination: stale (overwrite: if-newer)"},
		{"never: conflict", sep(facts{op: Encrypt, note: "dropped", dest: destFacts{exists: true, why: "stale"}}), Conflict, "destination exists and stale (overwrite: never)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, r := decide(tc.f)
			if a != tc.action || r != tc.reason {
				t.Fatalf("decide = (%s, %q), want (%s, %q)", a, r, tc.action, tc.reason)
			}
		})
	}
}

// TestContextEdit: the one definition of a re-encrypted context drops the
// ESDK's own keys, removes, then sets (encrypt.context over
// reencrypt.add), and never changes its input.
func TestContextEdit(t *testing.T) {
	src := map[string]string{"aws-crypto-public-key": "x", "keep": "1", "drop": "2", "over": "old"}
	e := &ContextEdit{Remove: []string{"drop", "absent"}, Set: map[string]string{"over": "new", "add": "3"}}
	got := e.Apply(src)
	want := map[string]string{"keep": "1", "over": "new", "add": "3"}
	if !sameContext(got, want) || len(src) != 4 {
		t.Fatalf("Apply = %v, want %v (source now %v)", got, want, src)
	}
	var none *ContextEdit
	if got := none.Apply(src); len(got) != 3 {
		t.Fatalf("nil edit: %v", got)
	}
}
