package spec

import (
	"strings"
	"testing"
)

// TestRequiredContextFields: encrypt.requiredContextKeys,
// decrypt.reproducedContext and reencrypt.storeRequiredContext are
// validated where they apply and refused where they do not.
func TestRequiredContextFields(t *testing.T) {
	job := func(op, extra string) string {
		s := minimalJob(op)
		return s + extra
	}
	cases := []struct {
		name, src string
		want      string // "" = valid
	}{
		{"encrypt ok", strings.Replace(job("encrypt", ""), "encrypt: {keyGroup: k}", "encrypt: {keyGroup: k, context: {tenant: a, p: x}, requiredContextKeys: [tenant]}", 1), ""},
		{"not in context", strings.Replace(job("encrypt", ""), "encrypt: {keyGroup: k}", "encrypt: {keyGroup: k, context: {p: x}, requiredContextKeys: [tenant]}", 1), "spec.encrypt.requiredContextKeys[0]"},
		{"duplicate", strings.Replace(job("encrypt", ""), "encrypt: {keyGroup: k}", "encrypt: {keyGroup: k, context: {tenant: a}, requiredContextKeys: [tenant, tenant]}", 1), "spec.encrypt.requiredContextKeys[1]"},
		{"reserved", strings.Replace(job("encrypt", ""), "encrypt: {keyGroup: k}", "encrypt: {keyGroup: k, context: {tenant: a}, requiredContextKeys: [aws-crypto-public-key]}", 1), "reserved"},
		{"on decrypt", strings.Replace(job("decrypt", ""), "decrypt: {keyGroup: k}", "decrypt: {keyGroup: k}\n  encrypt: {requiredContextKeys: [a]}", 1), "spec.encrypt"},
		{"reproduced ok", strings.Replace(job("decrypt", ""), "decrypt: {keyGroup: k}", "decrypt: {keyGroup: k, reproducedContext: {tenant: a}, requireContext: {tenant: a}}", 1), ""},
		{"reproduced contradicts requireContext", strings.Replace(job("decrypt", ""), "decrypt: {keyGroup: k}", "decrypt: {keyGroup: k, reproducedContext: {tenant: a}, requireContext: {tenant: b}}", 1), "spec.decrypt.reproducedContext.tenant"},
		{"reproduced reserved", strings.Replace(job("decrypt", ""), "decrypt: {keyGroup: k}", "decrypt: {keyGroup: k, reproducedContext: {aws-crypto-x: a}}", 1), "reserved"},
		{"reproduced on encrypt", job("encrypt", "  decrypt: {reproducedContext: {a: b}}\n"), "spec.decrypt"},
		{"reencrypt ok", job("reencrypt", "  reencrypt: {storeRequiredContext: true}\n"), ""},
		{"reencrypt required ok", strings.Replace(job("reencrypt", ""), "encrypt: {keyGroup: k}", "encrypt: {keyGroup: k, requiredContextKeys: [tenant]}", 1), ""},
		{"reencrypt removes a required key", strings.Replace(job("reencrypt", "  reencrypt: {remove: [tenant]}\n"), "encrypt: {keyGroup: k}", "encrypt: {keyGroup: k, requiredContextKeys: [tenant]}", 1), "spec.reencrypt.remove[0]"},
		{"store on decrypt", job("decrypt", "  reencrypt: {storeRequiredContext: true}\n"), "spec.reencrypt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Parse("t.yaml", []byte(tc.src), mapEnv(nil))
			if err != nil {
				if tc.want != "" && strings.Contains(err.Error(), tc.want) {
					return
				}
				t.Fatalf("parse: %v", err)
			}
			errs := docs[0].Job.Validate(nil)
			if tc.want == "" {
				if len(errs) != 0 {
					t.Fatalf("valid job refused: %v", errs)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", errs, tc.want)
			}
		})
	}
}
