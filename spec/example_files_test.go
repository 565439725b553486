package spec

import (
	"path/filepath"
	"testing"
)

// exampleEnv holds every variable the examples use, so the test is
// hermetic (the process environment is never read).
var exampleEnv = map[string]string{
	"BUCKET":         "acme-invoices",
	"OLD_KEY_ARN":    "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
	"NEW_KEY_ARN":    "arn:aws:kms:eu-west-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321",
	"KEY_A_ARN":      "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555",
	"KEY_B_EU_ARN":   "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
	"KEY_B_US_ARN":   "arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
	"KMS_ENDPOINT":   "http://127.0.0.1:4599",
	"CONFIG_BUCKET":  "acme-config",
	"PROD_KEY_ARN":   "arn:aws:kms:eu-west-1:111122223333:key/22222222-2222-3333-4444-555555555555",
	"SHARED_KEY_ARN": "arn:aws:kms:eu-west-1:111122223333:key/33333333-2222-3333-4444-555555555555",
	"AWS_ACCOUNT_ID": "111122223333",
}

func mapEnv(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("want at least 4 examples, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			docs, err := LoadFile(f, mapEnv(exampleEnv))
			if err != nil {
				t.Fatalf("%v", err)
			}
			if len(docs) == 0 {
				t.Fatal("no documents")
			}
			for _, d := range docs {
				if d.Job == nil && d.Policy == nil {
					t.Errorf("%s: neither job nor policy", d.Metadata.Name)
				}
			}
		})
	}
}
