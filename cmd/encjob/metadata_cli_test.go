package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/esdkvectors"
)

// cliHeader renders a header the shared vectors give as the Python ESDK
// parsed it (manifest "header" objects) the way aws-encryption-cli's
// metadata writes it, independently of encjob's renderer.
func cliHeader(t *testing.T, raw map[string]any) map[string]any {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString
	unb64 := func(s any) []byte {
		b, err := base64.StdEncoding.DecodeString(s.(string))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var id uint16
	fmt.Sscanf(raw["algorithm_suite_id"].(string), "0x%04x", &id)
	mid, _ := hex.DecodeString(raw["message_id_hex"].(string))
	out := map[string]any{
		"algorithm":          crypto.SuiteByID(id).Name,
		"message_id":         b64(mid),
		"encryption_context": raw["encryption_context"],
		"content_type":       raw["content_type"],
		"frame_length":       raw["frame_length"],
	}
	if raw["version"].(float64) == 1 {
		out["version"], out["type"], out["header_iv_length"], out["commitment_key"] = "1.0", raw["type"], raw["header_iv_length"], nil
	} else {
		out["version"], out["type"], out["header_iv_length"], out["commitment_key"] = "2.0", nil, nil, raw["commitment_key_b64"]
	}
	type edk struct{ id, info, ct []byte }
	var edks []edk
	for _, e := range raw["encrypted_data_keys"].([]any) {
		m := e.(map[string]any)
		edks = append(edks, edk{[]byte(m["provider_id"].(string)), unb64(m["provider_info_b64"]), unb64(m["encrypted_data_key_b64"])})
	}
	// The cli sorts EDKs by provider id bytes followed by key info bytes.
	sort.SliceStable(edks, func(i, j int) bool {
		return bytes.Compare(append(append([]byte{}, edks[i].id...), edks[i].info...), append(append([]byte{}, edks[j].id...), edks[j].info...)) < 0
	})
	var list []any
	for _, e := range edks {
		list = append(list, map[string]any{
			"key_provider":       map[string]any{"provider_id": b64(e.id), "key_info": b64(e.info)},
			"encrypted_data_key": b64(e.ct),
		})
	}
	out["encrypted_data_keys"] = list
	return out
}

// jsonKind is the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// sameShape checks that got has every field of want (recursively into
// objects, and into the first element of arrays) with the same JSON kind.
func sameShape(t *testing.T, path string, want, got any) {
	t.Helper()
	if jsonKind(want) != jsonKind(got) {
		t.Errorf("%s: %s in the cli's line, %s in encjob's (%v)", path, jsonKind(want), jsonKind(got), got)
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		if strings.HasSuffix(path, "encryption_context") {
			return // keys are data, not fields
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				t.Errorf("%s.%s: written by the cli, missing in encjob's line", path, k)
				continue
			}
			sameShape(t, path+"."+k, wv, gv)
		}
	case []any:
		if g := got.([]any); len(w) > 0 && len(g) > 0 {
			sameShape(t, path+"[0]", w[0], g[0])
		}
	}
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

// TestE2EMetadataMatchesCLI decrypts messages of the official ESDKs
// through the binary and compares each metadata line with aws-encryption-
// cli's, field by field: the header values against the cli's rendering of
// the header the Python ESDK parsed (shared vectors), absolute input and
// output, header_auth, the key that decrypted the data key, and the field
// set and JSON kinds of lines the cli wrote (testdata/cli-metadata) for
// encrypt, decrypt and a decrypt skipped for its encryption context.
func TestE2EMetadataMatchesCLI(t *testing.T) {
	set := esdkvectors.Load(t)
	var manifest struct {
		Cases []struct {
			ID     string         `json:"id"`
			Header map[string]any `json:"header"`
		} `json:"cases"`
	}
	b, err := os.ReadFile(set.Path("manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	rawHeaders := map[string]map[string]any{}
	for _, c := range manifest.Cases {
		rawHeaders[c.ID] = c.Header
	}
	cli := readLines(t, filepath.Join("testdata", "cli-metadata", "lines.jsonl"))
	dir := t.TempDir()
	versions := map[string]bool{}
	n := 0
	for _, c := range set.Cases {
		if c.Header == nil || c.Expected != "success" || len(c.DecryptKeys) != 1 {
			continue
		}
		key := set.Keys[c.DecryptKeys[0].KeyID]
		if key.Type != "raw-aes" {
			continue
		}
		n++
		t.Run(c.ID, func(t *testing.T) {
			cdir := filepath.Join(dir, c.ID)
			os.MkdirAll(filepath.Join(cdir, "out"), 0o755)
			material, _ := base64.StdEncoding.DecodeString(key.MaterialB64)
			if err := os.WriteFile(filepath.Join(cdir, "key"), material, 0o600); err != nil {
				t.Fatal(err)
			}
			ct, err := os.ReadFile(set.Path(c.Ciphertext))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(cdir, "msg.encrypted"), ct, 0o644)
			policy := strings.ToLower(strings.ReplaceAll(c.CommitmentPolicy, "_", "-"))
			w := []string{"-w", "provider=raw-aes", "key-file=key", "namespace=" + key.Namespace, "name=" + key.Name}
			// Relative paths on the command line: the lines must say where
			// the files are.
			wantCode(t, encjob(t, cdir, nil, args("decrypt", "-i", "msg.encrypted", "-o", "out", w, "--commitment-policy", policy, "--metadata-output", "meta.jsonl")...), 0)
			lines := readLines(t, filepath.Join(cdir, "meta.jsonl"))
			if len(lines) != 1 {
				t.Fatalf("%d lines", len(lines))
			}
			got := lines[0]
			want := cliHeader(t, rawHeaders[c.ID])
			versions[want["version"].(string)] = true
			h, _ := got["header"].(map[string]any)
			for k, wv := range want {
				if gv, ok := h[k]; !ok || !reflect.DeepEqual(gv, wv) {
					t.Errorf("header.%s = %v (present %v), the cli writes %v", k, gv, ok, wv)
				}
			}
			for k := range h {
				if _, ok := want[k]; !ok {
					t.Errorf("header.%s: not a field of the cli's header", k)
				}
			}
			if got["mode"] != "decrypt" || got["input"] != filepath.Join(cdir, "msg.encrypted") {
				t.Errorf("mode %v input %v, want decrypt and the absolute path %s", got["mode"], got["input"], filepath.Join(cdir, "msg.encrypted"))
			}
			out, _ := got["output"].(string)
			if !filepath.IsAbs(out) || filepath.Dir(out) != filepath.Join(cdir, "out") {
				t.Errorf("output %q: want an absolute path in %s", out, filepath.Join(cdir, "out"))
			} else if pt, err := os.ReadFile(out); err != nil || !bytes.Equal(pt, mustRead(t, set.Path(c.Plaintext))) {
				t.Errorf("output %s does not hold the plaintext: %v", out, err)
			}
			if got["decrypted_with"] != key.Namespace+"/"+key.Name {
				t.Errorf("decrypted_with %v, want %s/%s", got["decrypted_with"], key.Namespace, key.Name)
			}
			// The cli's decrypt line of the same message format version.
			if want["version"] == "1.0" {
				sameShape(t, "line", cli[1], got)
			} else {
				sameShape(t, "line", cli[3], got)
			}
		})
	}
	if n < 5 || !versions["1.0"] || !versions["2.0"] {
		t.Fatalf("%d vector cases (versions %v): the set should give v1 and v2 raw-AES cases with headers", n, versions)
	}

	// Encrypt and a context skip, against the cli's lines of those kinds.
	cdir := filepath.Join(dir, "own")
	os.MkdirAll(filepath.Join(cdir, "enc"), 0o755)
	os.MkdirAll(filepath.Join(cdir, "dec"), 0o755)
	os.WriteFile(filepath.Join(cdir, "a.txt"), []byte("hello"), 0o644)
	k := make([]byte, 32)
	os.WriteFile(filepath.Join(cdir, "key"), k, 0o600)
	wantCode(t, encjob(t, cdir, nil, args("encrypt", "-i", "a.txt", "-o", "enc", rawKey, "-c", "tenant=other", "--metadata-output", "enc.jsonl")...), 0)
	enc := readLines(t, filepath.Join(cdir, "enc.jsonl"))
	sameShape(t, "encrypt line", cli[0], enc[0])
	if h := enc[0]["header"].(map[string]any); h["commitment_key"] == nil || h["header_iv_length"] != nil {
		t.Errorf("v2 header: commitment_key %v, header_iv_length %v; want base64 and null", h["commitment_key"], h["header_iv_length"])
	}
	r := encjob(t, cdir, nil, args("decrypt", "-i", "enc/a.txt.encrypted", "-o", "dec", rawKey, "-c", "tenant=acme", "--metadata-output", "dec.jsonl")...)
	if r.code == 0 {
		t.Logf("context skip exited 0")
	}
	skip := readLines(t, filepath.Join(cdir, "dec.jsonl"))
	if len(skip) != 1 || skip[0]["skipped"] != true {
		t.Fatalf("skip lines %v", skip)
	}
	sameShape(t, "skip line", cli[2], skip[0])
	if h := skip[0]["header"].(map[string]any); h["message_id"] != enc[0]["header"].(map[string]any)["message_id"] {
		t.Errorf("skip line header is not the message's: %v", h)
	}
	if entries, _ := os.ReadDir(filepath.Join(cdir, "dec")); len(entries) != 0 {
		t.Errorf("a skipped message left output: %v", entries)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
