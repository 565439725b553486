package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestExampleKeyMigrationDemo runs the documented one-command demo of
// examples/key-migration.yaml against the KMS emulator.
func TestExampleKeyMigrationDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the KMS emulator")
	}
	cmd := exec.Command("bash", "examples/key-migration-demo.sh")
	cmd.Dir = "../.."
	cmd.Env = append(cleanEnv(), "ENCJOB_BIN="+binPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{"2 re-encrypted", "2 unchanged", "ok: every file migrated"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
}
