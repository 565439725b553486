package spec

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

const hierJob = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: h}
spec:
  operation: reencrypt
  sources: [{path: ./in}]
  output: {path: ./out}
  keyGroups:
    old:
      provider: aws-kms
      keys: ["arn:aws:kms:us-east-1:111122223333:key/k1"]
    hier:
      %s
  decrypt: {keyGroup: old}
  encrypt: {keyGroup: hier}
`

func TestHierarchyKeyGroup(t *testing.T) {
	src := fmt.Sprintf(hierJob, `provider: aws-kms-hierarchy
      keyStore: {table: branch-keys, kmsKey: "arn:aws:kms:us-east-1:111122223333:key/k2", endpoint: "http://127.0.0.1:8000"}
      branchKeyIdFrom: {contextKey: tenant, map: {a: bk-a}}
      cacheTTL: 10m
      cacheSize: 50`)
	g := mustParse(t, src, nil)[0].Job.KeyGroups["hier"]
	if g.KeyStore == nil || g.KeyStore.EffectiveLogicalName() != "branch-keys" || g.CacheTTL.Duration != 10*time.Minute ||
		g.CacheSize != 50 || g.BranchKeyIDFrom.Map["a"] != "bk-a" {
		t.Fatalf("group = %+v", g)
	}
	// A mixed group: a hierarchy member beside a KMS member.
	mixed := fmt.Sprintf(hierJob, `members:
        - {provider: aws-kms-hierarchy, keyStore: {table: t, logicalName: ks, discovery: true}, branchKeyId: bk, cacheTTL: 1m}
        - {provider: aws-kms, keys: ["arn:aws:kms:us-east-1:111122223333:key/k1"]}`)
	if g := mustParse(t, mixed, nil)[0].Job.KeyGroups["hier"]; g.Members[0].KeyStore.EffectiveLogicalName() != "ks" {
		t.Fatalf("mixed = %+v", g)
	}
}

func TestHierarchyKeyGroupErrors(t *testing.T) {
	for _, c := range []struct {
		group string
		want  []string
	}{
		{`{provider: aws-kms-hierarchy}`, []string{"keyStore", "branchKeyId", "cacheTTL"}},
		{`{provider: aws-kms-hierarchy, keyStore: {kmsKey: alias/x}, branchKeyId: b, branchKeyIdFrom: {contextKey: ""}, cacheTTL: 1m}`,
			[]string{"keyStore.table", "keyStore.kmsKey", "branchKeyIdFrom"}},
		{`{provider: aws-kms-hierarchy, keyStore: {table: t, discovery: true, mrk: true, kmsKey: "arn:aws:kms:us-east-1:111122223333:key/k"}, branchKeyIdFrom: {contextKey: ""}, cacheTTL: 1m, cacheSize: -1, keys: [x]}`,
			[]string{"keyStore.kmsKey", "branchKeyIdFrom.contextKey", "cacheSize", "keys"}},
		{`{provider: aws-kms-hierarchy, keyStore: {table: t, discoveryRegion: eu-west-1, kmsKey: "arn:aws:kms:us-east-1:111122223333:key/k"}, branchKeyId: b, cacheTTL: 1m}`,
			[]string{"keyStore.discoveryRegion"}},
		{`{provider: aws-kms, keys: ["arn:aws:kms:us-east-1:111122223333:key/k"], branchKeyId: b, cacheTTL: 1m}`, []string{"branchKeyId", "cacheTTL"}},
	} {
		_, err := Parse("t.yaml", []byte(fmt.Sprintf(hierJob, "\n      "+c.group)), mapEnv(nil))
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("%s: %v", c.group, err)
		}
		var got []string
		for _, e := range list {
			got = append(got, e.Field[len("spec.keyGroups.hier."):])
		}
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: errors %v lack %s", c.group, got, w)
			}
		}
	}
}
