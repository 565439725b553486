package kmsemu

import (
	"bytes"
	"testing"
)

func testMaterial(t testing.TB) *material {
	m, err := newMaterial(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBlobTamper flips every bit of a blob, cuts it at every length and
// appends a byte: each variant must fail to open.
func TestBlobTamper(t *testing.T) {
	m := testMaterial(t)
	h := blobHeader{"111122223333", "1234abcd-12ab-34cd-56ef-1234567890ab"}
	ec := map[string]string{"a": "b", "c": ""}
	blob := m.seal(h, []byte("plaintext"), ec)
	opens := func(b []byte, ec map[string]string) bool {
		got, head, nonce, sealed, err := parseBlob(b)
		if err != nil || got != h {
			return false
		}
		pt, err := m.open(head, nonce, sealed, ec)
		return err == nil && string(pt) == "plaintext"
	}
	if !opens(blob, ec) {
		t.Fatal("intact blob does not open")
	}
	for i := range blob {
		for bit := range 8 {
			b := bytes.Clone(blob)
			b[i] ^= 1 << bit
			if opens(b, ec) {
				t.Fatalf("blob with byte %d bit %d flipped opens", i, bit)
			}
		}
	}
	for n := range len(blob) {
		if opens(blob[:n], ec) {
			t.Fatalf("blob cut to %d bytes opens", n)
		}
	}
	if opens(append(bytes.Clone(blob), 0), ec) {
		t.Fatal("blob with a trailing byte opens")
	}
	for _, other := range []map[string]string{nil, {"a": "b"}, {"a": "b", "c": "", "d": ""}, {"a": "bc"}, {"ac": "", "b": ""}} {
		if opens(blob, other) {
			t.Fatalf("blob opens under context %v", other)
		}
	}
}

// FuzzParseBlob: parsing never panics, and on success the parts are exactly
// the input.
func FuzzParseBlob(f *testing.F) {
	m := testMaterial(f)
	f.Add(m.seal(blobHeader{"111122223333", "mrk-1234abcd12ab34cd56ef1234567890ab"}, []byte("x"), nil))
	f.Add([]byte{1, 12})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, head, nonce, sealed, err := parseBlob(b)
		if err != nil {
			if head != nil || nonce != nil || sealed != nil {
				t.Fatal("parts returned with an error")
			}
			return
		}
		if !bytes.Equal(bytes.Join([][]byte{head, nonce, sealed}, nil), b) || !bytes.Equal(head, h.marshal()) {
			t.Fatal("parts do not reassemble the input")
		}
	})
}
