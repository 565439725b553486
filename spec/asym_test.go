package spec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const asymJob = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: a}
spec:
  operation: %s
  sources: [{path: ./in}]
  output: {path: ./out}
  keyGroups:
    g: %s
  %s
`

func asymErr(op, group, use string) error {
	_, err := Parse("t.yaml", []byte(fmt.Sprintf(asymJob, op, group, use)), mapEnv(nil))
	return err
}

func TestAsymmetricKeyGroups(t *testing.T) {
	const arn = "arn:aws:kms:us-east-1:111122223333:key/k1"
	for _, c := range []struct {
		name, op, group, use string
		field                string // "" = valid
		detail               string
	}{
		{"ecdh static", "encrypt", `{provider: raw-ecdh, curve: ECC_NIST_P384, scheme: RawPrivateKeyToStaticPublicKey, privateKeyFile: me.pem, recipientPublicKeyFile: them.pem}`,
			`encrypt: {keyGroup: g, context: {tenant: acme}}`, "", ""},
		{"ecdh ephemeral encrypt", "encrypt", `{provider: raw-ecdh, curve: ECC_NIST_P256, scheme: EphemeralPrivateKeyToStaticPublicKey, recipientPublicKeyFile: them.pem}`,
			`encrypt: {keyGroup: g}`, "", ""},
		{"ecdh ephemeral decrypt", "decrypt", `{provider: raw-ecdh, curve: ECC_NIST_P256, scheme: EphemeralPrivateKeyToStaticPublicKey, recipientPublicKeyFile: them.pem}`,
			`decrypt: {keyGroup: g}`, "spec.decrypt.keyGroup", "can only encrypt"},
		{"ecdh discovery encrypt", "encrypt", `{provider: raw-ecdh, curve: ECC_NIST_P256, scheme: PublicKeyDiscovery, privateKeyFile: me.pem}`,
			`encrypt: {keyGroup: g}`, "spec.encrypt.keyGroup", "can only decrypt"},
		{"ecdh discovery decrypt", "decrypt", `{provider: raw-ecdh, curve: ECC_NIST_P521, scheme: PublicKeyDiscovery, privateKeyFile: me.pem}`,
			`decrypt: {keyGroup: g}`, "", ""},
		{"ecdh bad curve", "decrypt", `{provider: raw-ecdh, curve: P-384, scheme: PublicKeyDiscovery, privateKeyFile: me.pem}`,
			`decrypt: {keyGroup: g}`, "spec.keyGroups.g.curve", "ECC_NIST_P384"},
		{"ecdh missing recipient", "encrypt", `{provider: raw-ecdh, curve: ECC_NIST_P384, scheme: RawPrivateKeyToStaticPublicKey, privateKeyFile: me.pem}`,
			`encrypt: {keyGroup: g}`, "spec.keyGroups.g.recipientPublicKeyFile", ""},
		{"ecdh with kms keys", "encrypt", `{provider: raw-ecdh, curve: ECC_NIST_P384, scheme: EphemeralPrivateKeyToStaticPublicKey, recipientPublicKeyFile: t.pem, keys: [x]}`,
			`encrypt: {keyGroup: g}`, "spec.keyGroups.g.keys", ""},
		{"curve on raw-aes", "encrypt", `{provider: raw-aes, keyFile: k, namespace: n, name: m, curve: ECC_NIST_P384}`,
			`encrypt: {keyGroup: g}`, "spec.keyGroups.g.curve", "only for provider raw-ecdh"},
		{"kms ecdh static", "encrypt", `{provider: aws-kms-ecdh, keys: [alias/ka], curve: ECC_NIST_P256, scheme: KmsPrivateKeyToStaticPublicKey, recipientPublicKeyFile: t.pem}`,
			`encrypt: {keyGroup: g}`, "", ""},
		{"kms ecdh raw scheme", "decrypt", `{provider: aws-kms-ecdh, keys: [alias/ka], curve: ECC_NIST_P256, scheme: PublicKeyDiscovery}`,
			`decrypt: {keyGroup: g}`, "spec.keyGroups.g.scheme", ""},
		{"kms ecdh discovery encrypt", "encrypt", `{provider: aws-kms-ecdh, keys: [alias/ka], curve: ECC_NIST_P256, scheme: KmsPublicKeyDiscovery}`,
			`encrypt: {keyGroup: g}`, "spec.encrypt.keyGroup", "can only decrypt"},
		{"kms rsa unsigned", "encrypt", `{provider: aws-kms-rsa, keys: ["` + arn + `"], encryptionAlgorithm: RSAES_OAEP_SHA_256}`,
			`encrypt: {keyGroup: g, algorithm: AES_256_GCM_HKDF_SHA512_COMMIT_KEY}`, "", ""},
		{"kms rsa default signed suite", "encrypt", `{provider: aws-kms-rsa, keys: ["` + arn + `"], encryptionAlgorithm: RSAES_OAEP_SHA_256}`,
			`encrypt: {keyGroup: g}`, "spec.encrypt.algorithm", "only unsigned suites"},
		{"kms rsa alias", "decrypt", `{provider: aws-kms-rsa, keys: [alias/x], encryptionAlgorithm: RSAES_OAEP_SHA_1}`,
			`decrypt: {keyGroup: g}`, "spec.keyGroups.g.keys[0]", "key ARN"},
		{"kms rsa no algorithm", "decrypt", `{provider: aws-kms-rsa, keys: ["` + arn + `"]}`,
			`decrypt: {keyGroup: g}`, "spec.keyGroups.g.encryptionAlgorithm", ""},
		{"mixed members", "encrypt", `{members: [{provider: raw-ecdh, curve: ECC_NIST_P384, scheme: EphemeralPrivateKeyToStaticPublicKey, recipientPublicKeyFile: t.pem}, {provider: raw-aes, keyFile: k, namespace: n, name: m}, {provider: aws-kms, keys: ["` + arn + `"]}]}`,
			`encrypt: {keyGroup: g}`, "", ""},
		{"mixed members decrypt with ephemeral", "decrypt", `{members: [{provider: raw-aes, keyFile: k, namespace: n, name: m}, {provider: raw-ecdh, curve: ECC_NIST_P384, scheme: EphemeralPrivateKeyToStaticPublicKey, recipientPublicKeyFile: t.pem}]}`,
			`decrypt: {keyGroup: g}`, "spec.decrypt.keyGroup", "members[1] is an ephemeral-sender"},
	} {
		err := asymErr(c.op, c.group, c.use)
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		var list ErrorList
		if !errors.As(err, &list) || list[0].Field != c.field || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("%s: got %v, want an error at %s containing %q", c.name, err, c.field, c.detail)
		}
	}
}
