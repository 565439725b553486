package spec

import (
	"strings"
	"testing"
)

// TestReencryptMode: rewrap is accepted for reencrypt only, keeps the
// suite and frame length (setting either is an error naming the field),
// and full - the default - leaves the digest of existing jobs unchanged;
// allowHeaderNonceReuse is accepted with mode rewrap only; require is
// rewrap or full and implies that mode (contradicting it is an error);
// headerInPlace needs a rewrap in place.
func TestReencryptMode(t *testing.T) {
	env := mapEnv(nil)
	parse := func(src string) (*Job, error) {
		docs, err := Parse("j.yaml", []byte(src), env)
		if err != nil {
			return nil, err
		}
		return docs[0].Job, nil
	}
	base := minimalJob("reencrypt")
	plain, err := parse(base)
	if err != nil {
		t.Fatal(err)
	}
	full, err := parse(base + "  reencrypt: {mode: full}\n")
	if err != nil {
		t.Fatal(err)
	}
	if full.Rewrap() || full.Digest() != plain.Digest() {
		t.Fatal("mode full is not the default")
	}
	rw, err := parse(base + "  reencrypt: {mode: rewrap, add: {rotated: yes}}\n  commitmentPolicy: forbid-encrypt-allow-decrypt\n")
	if err != nil {
		t.Fatal(err)
	}
	if !rw.Rewrap() || rw.Encrypt.Algorithm != "" || rw.Encrypt.FrameLength != nil {
		t.Fatalf("rewrap job: %+v", rw.Encrypt)
	}
	if rw.Digest() == plain.Digest() {
		t.Fatal("rewrap and full jobs share a digest")
	}
	// The opt-in is part of what a saved plan was made for.
	if ok, err := parse(base + "  reencrypt: {mode: rewrap, add: {rotated: yes}, allowHeaderNonceReuse: true}\n  commitmentPolicy: forbid-encrypt-allow-decrypt\n"); err != nil || ok.Digest() == rw.Digest() || !ok.Reencrypt.AllowHeaderNonceReuse {
		t.Fatalf("allowHeaderNonceReuse: %v", err)
	}
	// require rewrap alone is mode rewrap; headerInPlace in place is fine.
	req, err := parse(strings.Replace(base, "output: {path: ./out}", "output: {inPlace: true}", 1) + "  reencrypt: {require: rewrap, headerInPlace: true}\n  commitmentPolicy: forbid-encrypt-allow-decrypt\n")
	if err != nil || !req.Rewrap() || req.Reencrypt.Mode != ReencryptRewrap || !req.Reencrypt.RequiresRewrap() {
		t.Fatalf("require rewrap: %v %+v", err, req)
	}
	for _, c := range []struct{ src, want string }{
		{strings.Replace(base, "encrypt: {keyGroup: k}\n  decrypt", "encrypt: {keyGroup: k, algorithm: 0x0478}\n  decrypt", 1) + "  reencrypt: {mode: rewrap}\n", "spec.encrypt.algorithm"},
		{strings.Replace(base, "encrypt: {keyGroup: k}\n  decrypt", "encrypt: {keyGroup: k, frameLength: 0}\n  decrypt", 1) + "  reencrypt: {mode: rewrap}\n", "spec.encrypt.frameLength"},
		{base + "  reencrypt: {mode: rewarp}\n", "spec.reencrypt.mode"},
		{minimalJob("encrypt") + "  reencrypt: {mode: rewrap}\n", "spec.reencrypt"},
		{base + "  reencrypt: {allowHeaderNonceReuse: true}\n", "spec.reencrypt.allowHeaderNonceReuse"},
		{base + "  reencrypt: {mode: full, allowHeaderNonceReuse: true}\n", "spec.reencrypt.allowHeaderNonceReuse"},
		{minimalJob("encrypt") + "  reencrypt: {allowHeaderNonceReuse: true}\n", "spec.reencrypt"},
		// require: a value, and not contradicting the mode.
		{base + "  reencrypt: {require: sometimes}\n", "spec.reencrypt.require"},
		{base + "  reencrypt: {mode: rewrap, require: full}\n", "spec.reencrypt.require"},
		{base + "  reencrypt: {mode: full, require: rewrap}\n", "spec.reencrypt.require"},
		{minimalJob("encrypt") + "  reencrypt: {require: full}\n", "spec.reencrypt"},
		// headerInPlace: a rewrap in place only.
		{base + "  reencrypt: {mode: rewrap, headerInPlace: true}\n", "spec.reencrypt.headerInPlace"},
		{strings.Replace(base, "output: {path: ./out}", "output: {inPlace: true}", 1) + "  reencrypt: {headerInPlace: true}\n", "spec.reencrypt.headerInPlace"},
	} {
		_, err := parse(c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %s, got %v", c.want, err)
		}
	}
}
