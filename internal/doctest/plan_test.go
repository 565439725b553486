package doctest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// exampleEnv gives every variable the examples use a value, so each can
// be planned; the KMS endpoint is an in-process emulator, S3 a closed
// port (plan must change nothing even when it fails).
func exampleEnv(kmsURL string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_KMS=" + kmsURL, "KMS_ENDPOINT=" + kmsURL,
		"AWS_ENDPOINT_URL_S3=http://127.0.0.1:9", "AWS_MAX_ATTEMPTS=1",
		"KEY_A_ARN=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"KEY_B_EU_ARN=arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
		"KEY_B_US_ARN=arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
		"MIGRATE_DIR=./out/migrate", // relative to examples/, as every path in a spec
		"BUCKET=acme-invoices", "OLD_KEY_ARN=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"NEW_KEY_ARN=arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321",
		"CONFIG_BUCKET=acme-config", "AWS_ACCOUNT_ID=111122223333",
		"PROD_KEY_ARN=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"SHARED_KEY_ARN=arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321",
	}
}

// TestPlanChangesNothing plans every example, on a fresh copy and again
// after the quickstart and an encryption under key A gave the decrypt and
// migration examples something to do, from the repository root and from
// another directory, and requires the sandbox (repository, HOME, TMPDIR,
// the working directory) to be byte-identical afterwards: no key
// generated, no directory or state file created, nothing touched.
func TestPlanChangesNothing(t *testing.T) {
	seed, err := os.ReadFile(filepath.Join(repoRoot(t), "kmsemu/testdata/keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	emu := kmsemutest.Start(t, string(seed))
	examples, err := filepath.Glob(filepath.Join(repoRoot(t), "examples", "*.yaml"))
	if err != nil || len(examples) < 4 {
		t.Fatalf("want at least 4 examples, found %d (%v)", len(examples), err)
	}
	// mustSucceed: where plan has something to plan, it must also work
	// (a plan that fails early would pass the snapshot check trivially).
	mustSucceed := map[string]map[string]bool{
		"fresh":    {"quickstart.yaml": true},
		"prepared": {"quickstart.yaml": true, "quickstart-decrypt.yaml": true, "key-migration.yaml": true},
	}
	for _, state := range []string{"fresh", "prepared"} {
		t.Run(state, func(t *testing.T) {
			s := newSandbox(t)
			env := exampleEnv(emu.URL)
			if state == "prepared" {
				for _, args := range [][]string{
					{"apply", "-f", "examples/quickstart.yaml"},
					{"encrypt", "-r", "-i", "examples/data", "-o", "examples/out/migrate", "-w", "key=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "-S", "-q"},
				} {
					if err := os.MkdirAll(filepath.Join(s.Repo, "examples/out/migrate"), 0o755); err != nil {
						t.Fatal(err)
					}
					if r := s.run(t, time.Minute, s.Repo, env, s.Bin, args...); r.Code != 0 {
						t.Fatalf("encjob %s: exit %d\n%s", strings.Join(args, " "), r.Code, r.Output)
					}
				}
			}
			for _, ex := range examples {
				name := filepath.Base(ex)
				for _, from := range []struct{ dir, file string }{
					{s.Repo, "examples/" + name},
					{s.Home, filepath.Join(s.Repo, "examples", name)},
				} {
					before := snapshot(t, s.Top)
					r := s.run(t, time.Minute, from.dir, env, s.Bin, "plan", "-f", from.file)
					after := snapshot(t, s.Top)
					where := name + " (from " + strings.TrimPrefix(from.dir, s.Top+"/") + ")"
					if d := diffSnapshots(before, after); len(d) > 0 {
						t.Errorf("%s: plan changed the tree (exit %d):\n  %s\n--- output:\n%s", where, r.Code, strings.Join(d, "\n  "), r.Output)
					}
					if mustSucceed[state][name] && r.Code != 0 {
						t.Errorf("%s: plan exit %d, want 0\n%s", where, r.Code, r.Output)
					}
					t.Logf("%s: exit %d: %s", where, r.Code, firstLine(r.Output))
				}
			}
			if state == "fresh" {
				// The one thing plan says it will create, apply creates.
				r := s.run(t, time.Minute, s.Repo, env, s.Bin, "plan", "-f", "examples/quickstart.yaml")
				key := filepath.Join(s.Repo, "examples/.encjob/quickstart.key")
				if !strings.Contains(r.Output, "will generate a 256-bit AES key at "+key) {
					t.Errorf("plan does not say it will generate %s:\n%s", key, r.Output)
				}
				if _, err := os.Lstat(key); err == nil {
					t.Errorf("plan created %s", key)
				}
			}
		})
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
