package policy_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/encjob/encjob/internal/policy"
)

const explainPolicy = `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: secrets}
spec:
  sources: [{path: ./secrets}, {path: "s3://acme-config/config/"}]
  rules:
    - match: ["**/*.md"]
      exempt: true
    - match: ["prod/**", "s3://acme-config/config/prod/**"]
      keyGroup: prod
      requireContext: {env: prod, owner: null}
      requireSigned: true
    - match: ["/secrets/shared/**"]
      keyGroup: shared
  keyGroups:
    prod: {provider: raw-aes, keyFile: prod.key, namespace: encjob, name: prod}
    shared: {provider: raw-aes, keyFile: shared.key, namespace: encjob, name: shared}
`

func TestExplain(t *testing.T) {
	pol := loadPolicy(t, explainPolicy, nil)
	for _, c := range []struct {
		loc      string
		rule     int
		pattern  string
		exempt   bool
		missed   []int
		source   int
		requires string
	}{
		{"secrets/prod/db.env", 1, "prod/**", false, []int{0}, 0, "key group prod; context env=prod, owner=(any); suite AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384; signed"},
		{"./secrets/prod/README.md", 0, "**/*.md", true, nil, 0, ""},
		{"s3://acme-config/config/prod/a.json", 1, "prod/**", false, []int{0}, 1, ""},
		{"secrets/shared/x.bin", 2, "/secrets/shared/**", false, []int{0, 1}, 0, "key group shared; suite AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"},
		{"other/shared/x.bin", -1, "", false, []int{0, 1, 2}, -1, ""},
		{"s3://acme-config/config/dev/a.json", -1, "", false, []int{0, 1, 2}, 1, ""},
	} {
		e, err := policy.Explain(pol, c.loc)
		if err != nil {
			t.Fatal(err)
		}
		var missed []int
		for _, m := range e.NotMatched {
			missed = append(missed, m.Index)
		}
		if e.Rule != c.rule || e.Pattern != c.pattern || e.Exempt != c.exempt || e.Source != c.source ||
			!slices.Equal(missed, c.missed) {
			t.Errorf("%s: rule %d %q exempt %v source %d missed %v; want %d %q %v %d %v", c.loc, e.Rule, e.Pattern, e.Exempt, e.Source, missed, c.rule, c.pattern, c.exempt, c.source, c.missed)
		}
		if c.requires != "" && e.Requires != c.requires {
			t.Errorf("%s: requires %q, want %q", c.loc, e.Requires, c.requires)
		}
		var buf bytes.Buffer
		if err := e.WriteText(&buf); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		switch {
		case c.rule < 0 && !strings.Contains(out, "no rule applies"):
			t.Errorf("%s: text %q", c.loc, out)
		case c.rule >= 0 && !strings.Contains(out, c.pattern):
			t.Errorf("%s: text does not name the pattern: %q", c.loc, out)
		case c.source < 0 && !strings.Contains(out, "under none of the policy's sources"):
			t.Errorf("%s: text does not say it is outside the sources: %q", c.loc, out)
		}
	}
}
