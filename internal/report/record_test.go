package report

import (
	"strings"
	"testing"
)

// TestDecodeRecord: one schema for writer and readers; a field readers
// do not use may have another shape (another tool's header), one they use
// may not; names come back from their _b64 bytes; a numeric shard is read.
func TestDecodeRecord(t *testing.T) {
	r, err := DecodeRecord([]byte(`{"mode":"encrypt","input":"a","header":"not an object","action":"encrypt","status":"done","shard":3,"bytes_in":7,"item_b64":"Yv9j"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Input != "a" || r.Action != "encrypt" || r.Shard != "3" || r.BytesIn != 7 || r.Identity() != "b\xffc" {
		t.Fatalf("%+v", r)
	}
	if _, err := DecodeRecord([]byte(`{"input":"a","header":"x","bytes_in":"seven"}`)); err == nil || !strings.Contains(err.Error(), "bytes_in") {
		t.Fatalf("a used field of the wrong type: %v", err)
	}
	if _, err := DecodeRecord([]byte(`{"input":"a","shard":{}}`)); err == nil || !strings.Contains(err.Error(), "shard") {
		t.Fatalf("bad shard: %v", err)
	}
}
