package policy_test

import (
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/policy"
	"github.com/encjob/encjob/planner"
)

// TestHistoryFindsTheWriteOfAMessage: a message is found by its header
// tag, so only the record of the write that produced it counts: a
// failed, planned or decrypt record, or one without a tag, never does,
// whatever its path; a later record of the same tag wins; a torn last
// line (a crash while logging) is ignored, but a line in the middle
// that is not a record is an error naming the log and line (a history
// silently missing records would let a rewrapped message pass).
func TestHistoryFindsTheWriteOfAMessage(t *testing.T) {
	// base64 of "AAAA..." tags: QUFB = "AAA", QkJC = "BBB".
	log := strings.Join([]string{
		`{"mode":"encrypt","input":"/a","output":"/a.enc","item":"a","action":"encrypt","status":"done","header_tag":"QUFB","time":"2026-01-01T00:00:00Z"}`,
		`{"mode":"reencrypt","input":"/a.enc","output":"/a.enc","item":"a.enc","action":"rewrap","status":"done","header_tag":"QkJC","time":"2026-01-02T00:00:00Z"}`,
		`{"mode":"reencrypt","input":"/a.enc","output":"/a.enc","item":"a.enc","action":"reencrypt","status":"failed","header_tag":"Q0ND","error":"x"}`,
		`{"mode":"decrypt","input":"/a.enc","output":"/a","item":"a.enc","action":"decrypt","status":"done","header_tag":"RERE"}`,
		`{"mode":"reencrypt","input":"/b.enc","output":"/b.enc","item":"b.enc","action":"reencrypt","status":"done"}`,
		`{"mode":"reencrypt","input":"/a.enc","output":"/c.enc","item":"a.enc","action":"reencrypt","status":"done","header_tag":"QUFB","time":"2026-01-03T00:00:00Z"}`,
		`{"mode":"reencrypt","input":"/x"`,
	}, "\n")
	h := policy.NewHistory()
	if err := h.Add("m.jsonl", strings.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	for tag, want := range map[string]planner.Action{"AAA": planner.Reencrypt, "BBB": planner.Rewrap, "CCC": "", "DDD": ""} {
		c, ok := h.Of(&crypto.Header{AuthTag: []byte(tag)})
		if ok != (want != "") || c.Action != want {
			t.Errorf("tag %s: %+v %v, want %q", tag, c, ok, want)
		}
		if tag == "BBB" && (c.Log != "m.jsonl" || c.Time != "2026-01-02T00:00:00Z" || c.Output != "/a.enc") {
			t.Errorf("tag BBB: %+v", c)
		}
	}
	if _, ok := h.Of(&crypto.Header{}); ok {
		t.Error("a header without a tag was found")
	}
	err := policy.NewHistory().Add("bad.jsonl", strings.NewReader(`{"mode":"encrypt","action":"encrypt","status":"done","header_tag":"QUFB"}`+"\nnot json\n{}\n"))
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:2") {
		t.Errorf("garbage line: %v", err)
	}
}
