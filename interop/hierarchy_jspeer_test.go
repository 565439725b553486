package interop_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms/hierarchy"
	"github.com/encjob/encjob/interop"
)

// jsHierarchy runs jspeer/hierarchy.js (the JS ESDK's hierarchical
// keyring) for one operation against the test's kmsemu and DynamoDB.
func jsHierarchy(t *testing.T, p *interop.JSPeer, e *hierEnv, op, id string, in []byte) ([]byte, error) {
	t.Helper()
	dir := t.TempDir()
	job := map[string]any{"op": op, "in": filepath.Join(dir, "in"), "out": filepath.Join(dir, "out"),
		"table": hierTable, "logical_name": "interop-ks", "kms_key": hierKey, "branch_key_id": id,
		"kms_endpoint": e.kms.URL, "ddb_endpoint": e.ddb.Endpoint, "region": "us-east-1",
		"context": map[string]string{"purpose": "interop-js"}}
	os.WriteFile(filepath.Join(dir, "in"), in, 0o600)
	b, _ := json.Marshal(job)
	os.WriteFile(filepath.Join(dir, "job.json"), b, 0o600)
	cmd := exec.Command(p.Node, filepath.Join(p.Dir, "hierarchy.js"), filepath.Join(dir, "job.json"))
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, errors.New(strings.TrimSpace(string(out)))
	}
	return os.ReadFile(filepath.Join(dir, "out"))
}

// TestHierarchyJS: the JS ESDK's Node hierarchical keyring and encjob's,
// over one key store, read each other's messages; after a rotation (by
// encjob's key store) old-version messages still decrypt on both sides and
// new ones use the new version.
func TestHierarchyJS(t *testing.T) {
	p, err := interop.FindJSPeer()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	e := newHierEnv(t)
	ctx := context.Background()
	id, err := e.ours.CreateKey(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := hierarchy.New(hierarchy.Config{Store: e.ours, BranchKeyID: id, TTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := e.ours.ActiveVersion(ctx, id)
	round := func(want string) (fromJS, fromUs []byte) {
		t.Helper()
		fromJS, err := jsHierarchy(t, p, e, "encrypt", id, []byte("hello from js"))
		if err != nil {
			t.Fatalf("JS encrypt: %v", err)
		}
		pt, _, err := crypto.Decrypt(ctx, fromJS, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(ours)})
		if err != nil || string(pt) != "hello from js" {
			t.Fatalf("encjob decrypting the JS message: %q %v", pt, err)
		}
		fromUs, err = crypto.Encrypt(ctx, []byte("hello from encjob"), crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(ours),
			Context: crypto.EncryptionContext{"purpose": "interop-js"}})
		if err != nil {
			t.Fatal(err)
		}
		pt, err = jsHierarchy(t, p, e, "decrypt", id, fromUs)
		if err != nil || string(pt) != "hello from encjob" {
			t.Fatalf("JS decrypting encjob's message: %q %v", pt, err)
		}
		for who, m := range map[string][]byte{"JS": fromJS, "encjob": fromUs} {
			if v := hierVersion(t, m).Version; v != want {
				t.Errorf("%s message under version %s, want %s", who, v, want)
			}
		}
		return fromJS, fromUs
	}
	oldJS, oldUs := round(v1)
	v2, err := e.ours.VersionKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	round(v2)
	if pt, err := jsHierarchy(t, p, e, "decrypt", id, oldUs); err != nil || string(pt) != "hello from encjob" {
		t.Errorf("JS, old-version message after rotation: %v", err)
	}
	if pt, _, err := crypto.Decrypt(ctx, oldJS, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(ours)}); err != nil || string(pt) != "hello from js" {
		t.Errorf("encjob, old-version JS message after rotation: %v", err)
	}
}
