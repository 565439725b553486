package spec

import (
	"errors"
	"fmt"
	"testing"
)

const membersJob = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: m}
spec:
  operation: %s
  sources: [{path: ./in}]
  output: {path: ./out}
  keyGroups:
    multi:
      members:
        - {provider: raw-aes, keyFile: k.key, namespace: ns, name: aes}
        - {provider: raw-rsa, keyFile: k.pem, namespace: ns, name: rsa, padding: oaep-sha256}
        - {provider: aws-kms, keys: ["%s"], region: eu-west-1}
  %s: {keyGroup: multi}
`

func TestKeyGroupMembers(t *testing.T) {
	src := fmt.Sprintf(membersJob, "encrypt", "arn:aws:kms:eu-west-1:111122223333:key/k1", "encrypt")
	j := mustParse(t, src, nil)[0].Job
	g := j.KeyGroups["multi"]
	if g.Provider != "" || len(g.Members) != 3 {
		t.Fatalf("group = %+v, want 3 members and no provider", g)
	}
	singles := g.Singles()
	if len(singles) != 3 || singles[0] != &g.Members[0] || singles[2].Region != "eu-west-1" {
		t.Fatalf("Singles() = %+v", singles)
	}
	if g.Members[0].KeyEncoding != "raw" {
		t.Errorf("member raw-aes keyEncoding = %q, want the default raw", g.Members[0].KeyEncoding)
	}
	if one := j.KeyGroups["multi"].Members[1].Singles(); len(one) != 1 || one[0] != &g.Members[1] {
		t.Errorf("a single-provider group's Singles() = %v, want itself", one)
	}
	// The digest changes with a member's key.
	other := mustParse(t, fmt.Sprintf(membersJob, "encrypt", "arn:aws:kms:eu-west-1:111122223333:key/k2", "encrypt"), nil)[0].Job
	if j.Digest() == other.Digest() {
		t.Error("digest ignores members")
	}
}

func TestKeyGroupMembersDecryptNeedsARNs(t *testing.T) {
	_, err := Parse("t.yaml", []byte(fmt.Sprintf(membersJob, "decrypt", "alias/k", "decrypt")), mapEnv(nil))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Type != ErrorTypeInvalid || list[0].Field != "spec.keyGroups.multi.members[2].keys[0]" {
		t.Fatalf("got %v, want one Invalid spec.keyGroups.multi.members[2].keys[0]", err)
	}
}
