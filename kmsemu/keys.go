package kmsemu

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

const (
	usageEncrypt = "ENCRYPT_DECRYPT"
	specSymmetic = "SYMMETRIC_DEFAULT"
	algSymmetric = "SYMMETRIC_DEFAULT"

	stateEnabled  = "Enabled"
	stateDisabled = "Disabled"
	statePending  = "PendingDeletion"
)

// keyScopedOps are the operations (and the ReEncrypt permissions) that a
// seed key's allowedOperations may list.
var keyScopedOps = []string{
	"CreateAlias", "Decrypt", "DescribeKey", "DisableKey", "EnableKey", "Encrypt",
	"GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncrypt", "GetPublicKey", "DeriveSharedSecret",
	"ReEncryptFrom", "ReEncryptTo", "ScheduleKeyDeletion",
}

type keyLoc struct{ account, region, id string }

type aliasLoc struct{ account, region, name string }

// mrkSet describes the regions of a multi-region key; immutable.
type mrkSet struct {
	primary  string
	replicas []string
}

// key is one regional KMS key. Replicas of a multi-region key are separate
// keys that share material and mrk. The mutable fields (state, deletion)
// are guarded by Emulator.mu; handlers work on copies.
type key struct {
	keyLoc
	arn         string
	created     time.Time
	description string
	usage       string
	spec        string
	allowed     map[string]bool // nil = all
	mat         *material       // symmetric ENCRYPT_DECRYPT keys only
	asym        *asymKey        // RSA and ECC keys only
	mrk         *mrkSet         // nil for single-region keys

	state    string
	deletion time.Time
}

type alias struct {
	aliasLoc
	target  string // key id
	created time.Time
}

// partitionOf returns the ARN partition of a region.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "eu-isoe-"):
		return "aws-iso-e"
	}
	return "aws"
}

func keyARN(l keyLoc) string {
	return fmt.Sprintf("arn:%s:kms:%s:%s:key/%s", partitionOf(l.region), l.region, l.account, l.id)
}

func aliasARN(l aliasLoc) string {
	return fmt.Sprintf("arn:%s:kms:%s:%s:%s", partitionOf(l.region), l.region, l.account, l.name)
}

func newKeyID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newMRKID() string {
	var b [16]byte
	rand.Read(b[:])
	return "mrk-" + hex.EncodeToString(b[:])
}

// identifier is a parsed KeyId parameter.
type identifier struct {
	raw     string
	isAlias bool
	isARN   bool
	loc     keyLoc   // for keys
	alias   aliasLoc // for aliases
}

// parseIdentifier interprets a KeyId as KMS does: key id, key ARN, alias
// name or alias ARN. Bare ids and alias names are in the caller's account
// and the request's region. An ARN for another region or partition is
// parsed but will not be found.
func parseIdentifier(raw string, rc *reqCtx) (identifier, *apiError) {
	id := identifier{raw: raw}
	switch {
	case strings.HasPrefix(raw, "arn:"):
		parts := strings.SplitN(raw, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" || !isAccount(parts[4]) || parts[3] == "" {
			return id, clientErr(errNotFound, "Invalid arn '%s'", raw)
		}
		id.isARN = true
		region, account, resource := parts[3], parts[4], parts[5]
		if parts[1] != partitionOf(region) {
			return id, clientErr(errNotFound, "Invalid arn '%s': partition %s does not contain region %s", raw, parts[1], region)
		}
		switch {
		case strings.HasPrefix(resource, "key/"):
			id.loc = keyLoc{account, region, strings.TrimPrefix(resource, "key/")}
		case strings.HasPrefix(resource, "alias/"):
			id.isAlias = true
			id.alias = aliasLoc{account, region, resource}
		default:
			return id, clientErr(errNotFound, "Invalid arn '%s'", raw)
		}
	case strings.HasPrefix(raw, "alias/"):
		id.isAlias = true
		id.alias = aliasLoc{rc.account, rc.region, raw}
	case validKeyID(raw):
		id.loc = keyLoc{rc.account, rc.region, raw}
	default:
		return id, clientErr(errNotFound, "Invalid keyId '%s'", raw)
	}
	return id, nil
}

// resolve finds the key a KeyId names, in the request's region, and returns
// a copy of it. member is the request member's name for validation errors;
// aliases are rejected unless allowAlias.
func (e *Emulator) resolve(rc *reqCtx, raw, member string, allowAlias bool) (key, *apiError) {
	if raw == "" {
		return key{}, requiredErr(member)
	}
	id, aerr := parseIdentifier(raw, rc)
	if aerr != nil {
		return key{}, aerr
	}
	if id.isAlias && !allowAlias {
		return key{}, clientErr(errNotFound, "Invalid keyId '%s': this operation takes a key id or key ARN, not an alias", raw)
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if id.isAlias {
		if id.alias.region != rc.region {
			return key{}, clientErr(errNotFound, "Alias %s is not found.", aliasARN(id.alias))
		}
		a, ok := e.aliases[id.alias]
		if !ok {
			return key{}, clientErr(errNotFound, "Alias %s is not found.", aliasARN(id.alias))
		}
		id.loc = keyLoc{a.account, a.region, a.target}
	}
	k, ok := e.keys[id.loc]
	if !ok || id.loc.region != rc.region {
		return key{}, clientErr(errNotFound, "Key '%s' does not exist", keyARN(id.loc))
	}
	return *k, nil
}

// authorize applies the seed's allowedOperations (the emulator's only
// authorization model) with the wording of a real KMS denial.
func (k *key) authorize(rc *reqCtx, perm string) *apiError {
	if k.allowed == nil || k.allowed[perm] ||
		((perm == "ReEncryptFrom" || perm == "ReEncryptTo") && k.allowed["ReEncrypt"]) {
		return nil
	}
	return clientErr(errAccessDenied,
		"User: arn:%s:iam::%s:user/kmsemu is not authorized to perform: kms:%s on resource: %s because no identity-based policy allows the kms:%s action",
		partitionOf(rc.region), rc.account, perm, k.arn, perm)
}

// usable checks that a key may perform a cryptographic operation: enabled,
// and a symmetric encryption key.
func (k *key) usable(op string) *apiError {
	if aerr := k.stateOK(); aerr != nil {
		return aerr
	}
	if k.asym != nil {
		return clientErr(errInvalidKeyUsage, "%s is an asymmetric %s key (%s), which is not valid for %s.", k.arn, k.spec, k.usage, op)
	}
	if k.usage != usageEncrypt || k.mat == nil {
		return clientErr(errInvalidKeyUsage, "%s key usage is %s which is not valid for %s.", k.arn, k.usage, op)
	}
	return nil
}

// checkAlgorithm validates an EncryptionAlgorithm member for a symmetric key.
func checkAlgorithm(alg, member string) *apiError {
	switch alg {
	case "", algSymmetric:
		return nil
	case "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE":
		return clientErr(errInvalidKeyUsage, "The encryption algorithm %s is not supported by a symmetric key.", alg)
	}
	return validationErr("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]", alg, member)
}

// specFor is the KeySpec the emulator reports for a key usage.
func specFor(usage string) string {
	switch usage {
	case "SIGN_VERIFY":
		return "RSA_2048"
	case "GENERATE_VERIFY_MAC":
		return "HMAC_256"
	case usageKeyAgreement:
		return "ECC_NIST_P256"
	}
	return specSymmetic
}

// metadata renders a key's KeyMetadata.
func (k *key) metadata() *keyMetadata {
	m := &keyMetadata{
		AWSAccountId:          k.account,
		KeyId:                 k.id,
		Arn:                   k.arn,
		CreationDate:          epoch(k.created),
		Enabled:               k.state == stateEnabled,
		Description:           k.description,
		KeyUsage:              k.usage,
		KeyState:              k.state,
		Origin:                "AWS_KMS",
		KeyManager:            "CUSTOMER",
		CustomerMasterKeySpec: k.spec,
		KeySpec:               k.spec,
		MultiRegion:           k.mrk != nil,
	}
	switch {
	case k.asym != nil:
		k.asym.algorithms(m)
	case k.usage == usageEncrypt:
		m.EncryptionAlgorithms = []string{algSymmetric}
	}
	if k.state == statePending {
		d := epoch(k.deletion)
		m.DeletionDate = &d
	}
	if k.mrk != nil {
		c := &multiRegionConfig{MultiRegionKeyType: "REPLICA"}
		if k.region == k.mrk.primary {
			c.MultiRegionKeyType = "PRIMARY"
		}
		c.PrimaryKey = &multiRegionKey{Arn: keyARN(keyLoc{k.account, k.mrk.primary, k.id}), Region: k.mrk.primary}
		c.ReplicaKeys = []multiRegionKey{}
		for _, r := range k.mrk.replicas {
			c.ReplicaKeys = append(c.ReplicaKeys, multiRegionKey{Arn: keyARN(keyLoc{k.account, r, k.id}), Region: r})
		}
		m.MultiRegionConfiguration = c
	}
	return m
}
