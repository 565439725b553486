package spec

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestInterpolate(t *testing.T) {
	env := mapEnv(map[string]string{"A": "x", "E": "", "NESTED": "${A}"})
	for _, c := range []struct {
		in, want string
		bad      bool
	}{
		{"plain", "plain", false},
		{"${A}", "x", false},
		{"pre-${A}-post", "pre-x-post", false},
		{"${A}${A}", "xx", false},
		{"$$", "$", false},
		{"$${A}", "${A}", false},
		{"cost $5", "cost $5", false},
		{"$HOME", "$HOME", false},
		{"trailing $", "trailing $", false},
		{"${U:-def}", "def", false},
		{"${E:-def}", "def", false},
		{"${E-def}", "", false},
		{"${U-def}", "def", false},
		{"${U:-}", "", false},
		{"${A:-def}", "x", false},
		{"${NESTED}", "${A}", false}, // values are not expanded again
		{"${U}", "", true},
		{"${A", "", true},
		{"${}", "", true},
		{"${1X}", "", true},
		{"${A:?x}", "", true},
	} {
		got, problem, _, _ := interpolate(c.in, env)
		if (problem != "") != c.bad {
			t.Errorf("%q: problem %q, want bad=%v", c.in, problem, c.bad)
			continue
		}
		if !c.bad && got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestInterpolationTyped(t *testing.T) {
	src := minimalJob("encrypt") + "  execution:\n    concurrency: ${N}\n    expectSkips: ${B:-true}\n  kms: {rateLimit: \"${R:-2.5}\"}\n"
	docs, err := Parse("j.yaml", []byte(src), mapEnv(map[string]string{"N": "7"}))
	if err != nil {
		t.Fatal(err)
	}
	j := docs[0].Job
	if j.Execution.Concurrency != 7 || !j.Execution.ExpectSkips || j.KMS.RateLimit != 2.5 {
		t.Errorf("got concurrency %d expectSkips %v rateLimit %v", j.Execution.Concurrency, j.Execution.ExpectSkips, j.KMS.RateLimit)
	}
	// An unset variable is an error at its own column (line 11: "    concurrency: ${N}").
	_, err = Parse("j.yaml", []byte(src), mapEnv(nil))
	var e *Error
	if !errors.As(err, &e) || e.Type != ErrorTypeRequired || e.Field != "spec.execution.concurrency" || e.Pos.Line != 11 || e.Pos.Column != 18 {
		t.Fatalf("got %v", err)
	}
}

func minimalJob(op string) string {
	s := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: m}
spec:
  operation: ` + op + `
  sources: [{path: ./in}]
  output: {path: ./out}
  keyGroups: {k: {provider: raw-aes, keyFile: k.key, namespace: ns, name: k}}
`
	switch op {
	case "encrypt":
		s += "  encrypt: {keyGroup: k}\n"
	case "decrypt":
		s += "  decrypt: {keyGroup: k}\n"
	default:
		s += "  encrypt: {keyGroup: k}\n  decrypt: {keyGroup: k}\n"
	}
	return s
}

func mustParse(t *testing.T, src string, env map[string]string) []Document {
	t.Helper()
	docs, err := Parse("t.yaml", []byte(src), mapEnv(env))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return docs
}

func TestDefaults(t *testing.T) {
	j := mustParse(t, minimalJob("encrypt"), nil)[0].Job
	want := map[string][2]any{
		"output.suffix":                  {j.Output.Suffix, ".encrypted"},
		"output.stripSuffix":             {j.Output.StripSuffix, ""},
		"output.overwrite":               {j.Output.Overwrite, "never"},
		"encrypt.algorithm":              {j.Encrypt.Algorithm, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"},
		"encrypt.frameLength":            {*j.Encrypt.FrameLength, 4096},
		"commitmentPolicy":               {j.CommitmentPolicy, "require-encrypt-require-decrypt"},
		"maxEncryptedDataKeys":           {j.MaxEncryptedDataKeys, 10},
		"caching":                        {j.Caching == nil, true},
		"execution.concurrency":          {j.Execution.Concurrency, 2 * runtime.GOMAXPROCS(0)},
		"execution.onError":              {j.Execution.OnError, "continue"},
		"execution.retries":              {*j.Execution.Retries, 3},
		"execution.shards":               {j.Execution.Shards, 1},
		"execution.expectSkips":          {j.Execution.ExpectSkips, false},
		"metadata.output":                {j.Metadata.Output, ""},
		"s3.partSize":                    {j.S3.PartSize, ByteSize(8 << 20)},
		"kms.retryMode":                  {j.KMS.RetryMode, "standard"},
		"kms.maxAttempts":                {j.KMS.MaxAttempts, 3},
		"kms.rateLimit":                  {j.KMS.RateLimit, 0.0},
		"keyGroups.k.keyEncoding":        {j.KeyGroups["k"].KeyEncoding, "raw"},
		"output.verify":                  {j.Output.Verify, false},
		"sources[0].followSymlinks":      {j.Sources[0].FollowSymlinks, false},
		"decrypt.maxBodyLength (unused)": {j.Decrypt.MaxBodyLength, ByteSize(0)},
	}
	for f, v := range want {
		if fmt.Sprint(v[0]) != fmt.Sprint(v[1]) {
			t.Errorf("%s = %v, want %v", f, v[0], v[1])
		}
	}

	big := &Job{KeyGroups: map[string]*KeyGroup{"many": {Provider: ProviderAWSKMS, Keys: make([]string, 12)}}}
	big.Defaults()
	if big.MaxEncryptedDataKeys != 12 {
		t.Errorf("maxEncryptedDataKeys with a 12-key group = %d, want 12", big.MaxEncryptedDataKeys)
	}
	set := &Job{MaxEncryptedDataKeys: 3, KeyGroups: big.KeyGroups}
	if set.Defaults(); set.MaxEncryptedDataKeys != 3 {
		t.Errorf("a set maxEncryptedDataKeys changed to %d", set.MaxEncryptedDataKeys)
	}

	d := mustParse(t, minimalJob("decrypt"), nil)[0].Job
	if d.Output.Suffix != ".decrypted" || d.Output.StripSuffix != ".encrypted" || d.Encrypt.FrameLength != nil {
		t.Errorf("decrypt defaults: suffix %q strip %q frameLength %v", d.Output.Suffix, d.Output.StripSuffix, d.Encrypt.FrameLength)
	}
	r := mustParse(t, minimalJob("reencrypt"), nil)[0].Job
	// A re-encryption keeps each message's suite and frame length unless
	// the job sets them: neither is defaulted.
	if r.Output.Suffix != "" || r.Output.StripSuffix != "" || r.Encrypt.FrameLength != nil || r.Encrypt.Algorithm != "" {
		t.Errorf("reencrypt defaults: suffix %q strip %q frameLength %v algorithm %q", r.Output.Suffix, r.Output.StripSuffix, r.Encrypt.FrameLength, r.Encrypt.Algorithm)
	}

	c := mustParse(t, minimalJob("encrypt")+"  caching: {maxAge: 5m}\n", nil)[0].Job.Caching
	if c.Capacity != 100 || c.MaxMessagesEncrypted != 1<<32 || c.MaxBytesEncrypted != 1<<63-1 || c.MaxAge.Duration != 5*time.Minute {
		t.Errorf("caching defaults: %+v", *c)
	}

	// Explicit values are kept; Defaults is idempotent.
	before := r.Digest()
	r.Defaults()
	r.Defaults()
	if r.Digest() != before {
		t.Error("Defaults is not idempotent")
	}

	p := mustParse(t, `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: p}
spec:
  sources: [{path: ./s}]
  rules: [{match: ["**"], keyGroup: b, algorithm: "0578"}]
  keyGroups:
    b: {provider: raw-aes, keyFile: k, namespace: n, name: b}
    a: {provider: raw-aes, keyFile: k, namespace: n, name: a}
`, nil)[0].Policy
	if got := strings.Join(p.DecryptKeyGroups, ","); got != "a,b" {
		t.Errorf("decryptKeyGroups default %q, want a,b", got)
	}
	if p.Rules[0].Algorithm != DefaultAlgorithm || p.CommitmentPolicy != PolicyRequireEncryptRequireDecrypt || p.Execution.OnError != "continue" {
		t.Errorf("policy defaults: %+v", p)
	}
}

func TestFullJobValues(t *testing.T) {
	docs, err := LoadFile("testdata/good/full-job.yaml", mapEnv(map[string]string{"TENANT": "acme", "PORT": "9000"}))
	if err != nil {
		t.Fatal(err)
	}
	d := docs[0]
	j := d.Job
	if d.Metadata.Name != "full.job-1" || d.Metadata.Labels["example.com/team"] != "billing" {
		t.Errorf("metadata %+v", d.Metadata)
	}
	rc := j.Decrypt.RequireContext
	if v, ok := rc["classification"]; !ok || v != nil {
		t.Errorf("null requireContext value: present=%v value=%v", ok, v)
	}
	if v := rc["tenant"]; v == nil || *v != "acme" {
		t.Errorf("tenant = %v", v)
	}
	if j.Encrypt.Algorithm != "AES_256_GCM_HKDF_SHA512_COMMIT_KEY" {
		t.Errorf("algorithm not canonicalised: %q", j.Encrypt.Algorithm)
	}
	if j.CommitmentPolicy != PolicyRequireEncryptAllowDecrypt {
		t.Errorf("commitmentPolicy not normalised: %q", j.CommitmentPolicy)
	}
	if *j.Encrypt.FrameLength != 0 || *j.Execution.Retries != 0 {
		t.Errorf("explicit zeros replaced: frameLength %d retries %d", *j.Encrypt.FrameLength, *j.Execution.Retries)
	}
	if j.Decrypt.MaxBodyLength != 1<<30 || j.Caching.MaxBytesEncrypted != 10<<30 || j.Caching.MaxMessagesEncrypted != 1000 || j.S3.PartSize != 5<<20 {
		t.Errorf("sizes: %v %v %v %v", j.Decrypt.MaxBodyLength, j.Caching.MaxBytesEncrypted, j.Caching.MaxMessagesEncrypted, j.S3.PartSize)
	}
	if j.Caching.MaxAge.Duration != 90*time.Minute || j.KMS.RateLimit != 12.5 || j.KeyGroups["old"].Endpoint != "http://127.0.0.1:9000" {
		t.Errorf("maxAge %v rateLimit %v endpoint %q", j.Caching.MaxAge, j.KMS.RateLimit, j.KeyGroups["old"].Endpoint)
	}
	// Positions map field paths back to the file.
	for field, want := range map[string]string{
		"spec.keyGroups.aes.keyFile":              "45:16",
		"spec.sources[0].include[1]":              "13:31",
		`spec.decrypt.requireContext["odd key"]`:  "58:76",
		"spec.keyGroups.aes.thisFieldIsNotInFile": "44:7", // falls back to the group
		"spec.nothing":                            "10:3",
	} {
		if got := d.Positions.Of(field); fmt.Sprintf("%d:%d", got.Line, got.Column) != want || got.File != "testdata/good/full-job.yaml" {
			t.Errorf("Positions.Of(%s) = %v, want %s", field, got, want)
		}
	}
	if j.Positions != d.Positions || !j.Positions.Has("spec.kms.endpoint") || j.Positions.Has("spec.output.path.x") {
		t.Error("job positions not shared with the document")
	}
	e := j.Positions.Error(ErrorTypeInvalid, "spec.keyGroups.aes.keyFile", "./k.key", "no such file")
	if e.Error() != `testdata/good/full-job.yaml:45:16: spec.keyGroups.aes.keyFile: invalid value "./k.key": no such file` {
		t.Errorf("later-stage error renders as %q", e.Error())
	}
}

func TestMultiDocument(t *testing.T) {
	docs, err := LoadFile("testdata/good/multi.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Kind != KindJob || docs[0].Job == nil || docs[1].Kind != KindPolicy || docs[1].Policy == nil {
		t.Fatalf("got %d docs: %+v", len(docs), docs)
	}
	if docs[0].Pos.Line != 3 || docs[1].Pos.Line != 15 {
		t.Errorf("document positions %v %v", docs[0].Pos, docs[1].Pos)
	}
	if docs[1].Positions.Of("spec.rules[1].keyGroup").Line != 24 {
		t.Errorf("second document positions are not its own: %v", docs[1].Positions.Of("spec.rules[1].keyGroup"))
	}
	// Errors in several documents are all reported, each at its line.
	src := minimalJob("encrypt") + "  bogus: 1\n---\n" + strings.Replace(minimalJob("decrypt"), "name: m}", "name: m2}", 1) + "  bogus: 2\n"
	_, err = Parse("m.yaml", []byte(src), nil)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 || list[0].Pos.Line != 10 || list[1].Pos.Line != 21 || list[1].Type != ErrorTypeUnknown {
		t.Fatalf("got %v", err)
	}
}

func TestErrorsAs(t *testing.T) {
	_, err := Parse("x.yaml", []byte("apiVersion: encjob.dev/v1\nkind: EncryptionJob\nmetadata: {name: x}\nspec: {operation: shred}\n"), nil)
	var list ErrorList
	if !errors.As(err, &list) || len(list) < 2 {
		t.Fatalf("not an ErrorList with several errors: %v", err)
	}
	var first *Error
	if !errors.As(err, &first) || first != list[0] {
		t.Fatal("errors.As does not reach the first *Error")
	}
	wrapped := fmt.Errorf("load: %w", err)
	if !errors.As(wrapped, &list) {
		t.Fatal("wrapped list not found")
	}
	if (ErrorList{}).Err() != nil || list.Err() == nil {
		t.Error("Err must be nil exactly when empty")
	}
}

func TestValidatorsHook(t *testing.T) {
	called := 0
	l := &Loader{Env: mapEnv(nil), Validators: Validators{
		Algorithm:        func(s string) error { called++; return fmt.Errorf("crypto: unknown algorithm suite %q", s) },
		CommitmentPolicy: func(s string) error { called++; return nil },
	}}
	src := minimalJob("encrypt") + "  commitmentPolicy: custom\n"
	src = strings.Replace(src, "encrypt: {keyGroup: k}", "encrypt: {keyGroup: k, algorithm: X}", 1)
	_, err := l.Parse("h.yaml", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Field != "spec.encrypt.algorithm" || list[0].Type != ErrorTypeInvalid || called != 2 {
		t.Fatalf("got %v (called %d)", err, called)
	}
}

func TestJobBuiltInCode(t *testing.T) {
	// The CLI builds jobs from flags: Validate and Defaults work without
	// a file, and errors have fields but no positions.
	j := &Job{Operation: OpEncrypt, Sources: []Source{{Path: "in"}}, Output: Output{Path: "out"},
		KeyGroups: map[string]*KeyGroup{"k": {Provider: ProviderRawAES, KeyFile: "k", Namespace: "n", Name: "k"}},
		Encrypt:   EncryptSettings{KeyGroup: "k"}}
	if errs := j.Validate(nil); len(errs) != 0 {
		t.Fatal(errs)
	}
	j.Defaults()
	if errs := j.Validate(nil); len(errs) != 0 {
		t.Fatalf("defaulted job invalid: %v", errs)
	}
	j.Encrypt.KeyGroup = "nope"
	errs := j.Validate(nil)
	if len(errs) != 1 || errs[0].Field != "spec.encrypt.keyGroup" || errs[0].Pos.IsValid() {
		t.Fatalf("got %v", errs)
	}
}

func TestDigest(t *testing.T) {
	a := mustParse(t, minimalJob("encrypt"), nil)[0].Job
	// Same meaning, different layout, key order, explicit defaults and
	// execution settings: same digest.
	b := mustParse(t, `# comment
kind: EncryptionJob
apiVersion: encjob.dev/v1
metadata: {name: other-name}
spec:
  keyGroups:
    k: {name: k, namespace: ns, keyFile: k.key, provider: raw-aes, keyEncoding: raw}
  encrypt: {keyGroup: k, frameLength: 4096, algorithm: "0x0578"}
  output: {path: ./out, overwrite: never, suffix: .encrypted}
  sources:
    - path: ./in
  operation: encrypt
  commitmentPolicy: REQUIRE_ENCRYPT_REQUIRE_DECRYPT
  execution: {concurrency: 99, onError: fail-fast}
`, nil)[0].Job
	if a.Digest() != b.Digest() {
		t.Error("equivalent jobs have different digests")
	}
	if len(a.Digest()) != 64 {
		t.Error("digest not a sha256 hex")
	}
	for name, change := range map[string]func(j *Job){
		"frameLength": func(j *Job) { f := 0; j.Encrypt.FrameLength = &f },
		"context":     func(j *Job) { j.Encrypt.Context = map[string]string{"a": "b"} },
		"keyFile":     func(j *Job) { j.KeyGroups["k"].KeyFile = "other" },
		"include":     func(j *Job) { j.Sources[0].Include = []string{"*.csv"} },
		"overwrite":   func(j *Job) { j.Output.Overwrite = OverwriteAlways },
	} {
		c := mustParse(t, minimalJob("encrypt"), nil)[0].Job
		change(c)
		if c.Digest() == a.Digest() {
			t.Errorf("changing %s keeps the digest", name)
		}
	}
	// Digest does not modify the job.
	x := &Job{Operation: OpEncrypt}
	_ = x.Digest()
	if x.Output.Suffix != "" || x.Execution.Concurrency != 0 {
		t.Error("Digest modified its receiver")
	}
	p := mustParse(t, `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: p}
spec:
  sources: [{path: ./s}]
  rules: [{match: ["**"], keyGroup: k}]
  keyGroups: {k: {provider: raw-aes, keyFile: k, namespace: n, name: k}}
`, nil)[0].Policy
	if len(p.Digest()) != 64 {
		t.Error("policy digest")
	}
}

func TestOutputName(t *testing.T) {
	enc := Output{Suffix: ".encrypted"}
	dec := Output{Suffix: ".decrypted", StripSuffix: ".encrypted"}
	cli := Output{Suffix: ".decrypted"} // aws-encryption-cli naming
	for _, c := range []struct {
		o        Output
		in, want string
	}{
		{enc, "a.txt", "a.txt.encrypted"},
		{dec, "a.txt.encrypted", "a.txt"},
		{dec, "a.txt", "a.txt.decrypted"},
		{dec, ".encrypted", ".encrypted.decrypted"}, // never an empty name
		{cli, "x.encrypted", "x.encrypted.decrypted"},
		{Output{}, "same", "same"},
	} {
		if got := c.o.Name(c.in); got != c.want {
			t.Errorf("%+v.Name(%q) = %q, want %q", c.o, c.in, got, c.want)
		}
	}
}

func TestAliasBombBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: encjob.dev/v1\nkind: EncryptionJob\nmetadata: {name: bomb}\nx0: &a0 [k]\n")
	for i := 1; i < 30; i++ {
		fmt.Fprintf(&b, "x%d: &a%d [*a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1)
	}
	b.WriteString("spec:\n  sources: *a29\n")
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(b.String()), nil)
	if err == nil {
		t.Fatal("alias bomb accepted")
	}
	_ = start // no timed assertion: the node budget bounds the work
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile("testdata/does-not-exist.yaml", nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

// TestExpandedBytesBounded is issue 12.14: a spec is bounded by the bytes
// it decodes to with aliases expanded, not only by its node count: a 1 MiB
// scalar aliased 100 times (a 1 MiB file) is refused with a clear error
// instead of becoming 100 MiB of values.
func TestExpandedBytesBounded(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	aliases := strings.TrimSuffix(strings.Repeat("*a, ", 100), ", ")
	doc := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: m}
spec:
  operation: encrypt
  output: {path: ./out}
  keyGroups: {k: {provider: raw-aes, keyFile: k.key, namespace: ns, name: k}}
  encrypt: {keyGroup: k, context: {big: &a ` + big + `}}
  sources: [{path: ./in, include: [` + aliases + `]}]
`
	_, err := Parse("laughs.yaml", []byte(doc), nil)
	if err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Fatalf("err = %.300v", err)
	}
}

// A file with no document (empty, comments only, "---" only, null) is an
// error at 1:1, so validate refuses what plan and apply refuse.
func TestNoDocument(t *testing.T) {
	for _, src := range []string{"", "\n", "# only a comment\n", "---\n---\n", "null\n", "~\n"} {
		docs, err := Parse("f.yaml", []byte(src), nil)
		var list ErrorList
		if !errors.As(err, &list) || len(list) != 1 || list[0].Pos.Line != 1 || list[0].Pos.Column != 1 ||
			!strings.Contains(list[0].Error(), "f.yaml:1:1: required value: the file holds no document") {
			t.Errorf("%q: got %v, %v; want one error at f.yaml:1:1", src, docs, err)
		}
	}
}
