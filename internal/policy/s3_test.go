package policy_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/internal/policy"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources/s3test"
)

const s3Policy = `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: objects}
spec:
  sources: [{path: "s3://cfg/config/"}]
  rules:
    - match: ["s3://cfg/config/public/**"]
      exempt: true
    - match: ["s3://cfg/config/**"]
      keyGroup: west
      requireContext: {env: prod}
  keyGroups:
    east: {provider: aws-kms, keys: ["${EAST}"]}
    west: {provider: aws-kms, keys: ["${WEST}"]}
`

// Check and apply over S3 objects (a real S3 server) with KMS key groups
// (the emulator).
func TestCheckAndApplyS3(t *testing.T) {
	srv := s3test.Start(t)
	e := newKMS(t)
	ctx := context.Background()
	srv.CreateBucket(t, "cfg")
	east, west := e.keyring(t, eastARN), e.keyring(t, westARN)
	put := func(key string, data []byte) {
		if _, err := srv.Client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("cfg"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) []byte {
		out, err := srv.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("cfg"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b
	}
	pt := []byte(`{"db": "secret"}`)
	put("config/ok.json", seal(t, west, 0x0578, pt, "env=prod"))
	put("config/old.json", seal(t, east, 0x0578, pt, "env=prod"))
	put("config/dev.json", seal(t, west, 0x0578, pt, "env=dev"))
	put("config/public/readme.txt", pt)
	pol := loadPolicy(t, s3Policy, map[string]string{"EAST": eastARN, "WEST": westARN})
	cfg := e.config()
	cfg.Keys = nil
	o := policy.Options{KMS: cfg, S3Client: srv.Client}
	e.emu.ResetCalls()

	rep, err := policy.Check(ctx, pol, o)
	if err != nil {
		t.Fatal(err)
	}
	var failing []string
	for _, it := range rep.Failing() {
		failing = append(failing, it.Input)
	}
	if want := []string{"s3://cfg/config/old.json", "s3://cfg/config/dev.json"}; !equalSets(failing, want) {
		t.Errorf("failing %v, want %v", failing, want)
	}
	if rep.Totals.Compliant != 1 || rep.Totals.Exempt != 1 {
		t.Errorf("totals %+v", rep.Totals)
	}
	if n := e.total(); n != 0 {
		t.Fatalf("check made %d KMS calls", n)
	}

	rec, err := policy.Plan(ctx, pol, policy.PlanOptions{Options: o})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := rec.Apply(ctx, executor.Options{})
	if err != nil || !sum.OK() || sum.Done[planner.Reencrypt] != 2 {
		t.Fatalf("apply: %v %v %+v", err, sum.Done, sum.Failed)
	}
	for _, k := range []string{"config/old.json", "config/dev.json"} {
		got, h, err := decrypt(west, get(k))
		if err != nil || !bytes.Equal(got, pt) || h.Context["env"] != "prod" {
			t.Errorf("%s after apply: %v %v", k, err, h)
		}
	}
	if !bytes.Equal(get("config/public/readme.txt"), pt) {
		t.Error("exempt object changed")
	}

	e.emu.ResetCalls()
	rec2, err := policy.Plan(ctx, pol, policy.PlanOptions{Options: o})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec2.Apply(ctx, executor.Options{}); err != nil {
		t.Fatal(err)
	}
	counts := planner.Count(rec2.Items())
	if rec2.HasChanges() || counts[planner.Unchanged] != 3 || counts[planner.Skip] != 1 {
		t.Errorf("second plan: %v", counts)
	}
	if n := e.total(); n != 0 {
		t.Errorf("second plan+apply made %d KMS calls", n)
	}
}
