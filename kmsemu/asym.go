package kmsemu

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"
	"strings"
)

// Asymmetric keys: RSA keys for ENCRYPT_DECRYPT (RSAES_OAEP_SHA_1 and
// RSAES_OAEP_SHA_256; public-key encryption also works offline with the
// key GetPublicKey returns) and NIST-curve ECC keys for KEY_AGREEMENT
// (DeriveSharedSecret with algorithm ECDH). The private halves never leave
// the emulator.

const (
	usageKeyAgreement = "KEY_AGREEMENT"
	algOAEPSHA1       = "RSAES_OAEP_SHA_1"
	algOAEPSHA256     = "RSAES_OAEP_SHA_256"
	algECDH           = "ECDH"
)

// asymSpecs lists the asymmetric key specs the emulator creates, with the
// key usage each requires.
var asymSpecs = map[string]string{
	"RSA_2048": usageEncrypt, "RSA_3072": usageEncrypt, "RSA_4096": usageEncrypt,
	"ECC_NIST_P256": usageKeyAgreement, "ECC_NIST_P384": usageKeyAgreement, "ECC_NIST_P521": usageKeyAgreement,
}

var eccCurves = map[string]elliptic.Curve{"ECC_NIST_P256": elliptic.P256(), "ECC_NIST_P384": elliptic.P384(), "ECC_NIST_P521": elliptic.P521()}

// asymKey is the key pair of an asymmetric key; immutable.
type asymKey struct {
	rsa    *rsa.PrivateKey // RSA_* keys
	ec     *ecdh.PrivateKey
	pubDER []byte // SubjectPublicKeyInfo
}

// checkSpecUsage says whether KMS accepts the key spec with the usage
// ("" when it does).
func checkSpecUsage(spec, usage string) string {
	if spec == specSymmetic || spec == "" {
		if usage != usageEncrypt {
			return fmt.Sprintf("KeyUsage %s is not compatible with KeySpec SYMMETRIC_DEFAULT", usage)
		}
		return ""
	}
	want, ok := asymSpecs[spec]
	switch {
	case !ok:
		return fmt.Sprintf("kmsemu does not support KeySpec %s (supported: SYMMETRIC_DEFAULT, RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521)", spec)
	case usage != want:
		return fmt.Sprintf("KeyUsage %s is not compatible with KeySpec %s (kmsemu supports %s for it)", usage, spec, want)
	}
	return ""
}

// newAsymKey generates the key pair of an asymmetric key spec.
func newAsymKey(spec string) (*asymKey, error) {
	a := &asymKey{}
	var pub any
	if strings.HasPrefix(spec, "RSA_") {
		bits := map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}[spec]
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, err
		}
		a.rsa, pub = k, &k.PublicKey
	} else {
		k, err := ecdsa.GenerateKey(eccCurves[spec], rand.Reader)
		if err != nil {
			return nil, err
		}
		if a.ec, err = k.ECDH(); err != nil {
			return nil, err
		}
		pub = &k.PublicKey
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	a.pubDER = der
	return a, nil
}

// algorithms fills the algorithm lists of an asymmetric key's metadata.
func (a *asymKey) algorithms(m *keyMetadata) {
	if a.rsa != nil {
		m.EncryptionAlgorithms = []string{algOAEPSHA1, algOAEPSHA256}
	} else {
		m.KeyAgreementAlgorithms = []string{algECDH}
	}
}

// stateOK checks the key state alone (usage is checked per operation).
func (k *key) stateOK() *apiError {
	switch k.state {
	case stateDisabled:
		return clientErr(errDisabled, "%s is disabled.", k.arn)
	case statePending:
		return clientErr(errInvalidState, "%s is pending deletion.", k.arn)
	}
	return nil
}

// oaep returns the hash of an RSA encryption algorithm for an RSA key.
func (k *key) oaep(alg, member string) (func() hash.Hash, *apiError) {
	if k.asym == nil || k.asym.rsa == nil {
		return nil, clientErr(errInvalidKeyUsage, "%s key usage is %s which is not valid for this operation.", k.arn, k.usage)
	}
	switch alg {
	case algOAEPSHA1:
		return sha1.New, nil
	case algOAEPSHA256:
		return sha256.New, nil
	case "", algSymmetric, "SM2PKE":
		return nil, clientErr(errInvalidKeyUsage, "The encryption algorithm %s is not supported by %s (%s); use RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256.", orDefault(alg), k.arn, k.spec)
	}
	return nil, validationErr("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]", alg, member)
}

func orDefault(alg string) string {
	if alg == "" {
		return algSymmetric
	}
	return alg
}

// encryptRSA is Encrypt with an RSA key: no encryption context (KMS
// refuses one for asymmetric keys), plaintext up to the OAEP limit.
func (e *Emulator) encryptRSA(rc *reqCtx, k key, in encryptInput) (any, *apiError) {
	h, aerr := k.oaep(in.EncryptionAlgorithm, "encryptionAlgorithm")
	if aerr = firstErr(k.authorize(rc, "Encrypt"), k.stateOK(), aerr); aerr != nil {
		return nil, aerr
	}
	if len(in.EncryptionContext) > 0 {
		return nil, validationErr("EncryptionContext is not supported with asymmetric KMS keys (%s)", k.arn)
	}
	if max := k.asym.rsa.Size() - 2*h().Size() - 2; len(in.Plaintext) > max {
		return nil, validationErr("Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to %d for %s with %s", max, k.spec, in.EncryptionAlgorithm)
	}
	if in.DryRun {
		return nil, dryRunErr
	}
	ct, err := rsa.EncryptOAEP(h(), rand.Reader, &k.asym.rsa.PublicKey, in.Plaintext, nil)
	if err != nil {
		return nil, newErr(errInternal, http.StatusInternalServerError, "%v", err)
	}
	return encryptOutput{CiphertextBlob: ct, KeyId: k.arn, EncryptionAlgorithm: in.EncryptionAlgorithm}, nil
}

// decryptRSA is Decrypt of a ciphertext named to an RSA key by KeyId
// (an asymmetric ciphertext does not identify its key).
func (e *Emulator) decryptRSA(rc *reqCtx, k key, in decryptInput) (any, *apiError) {
	h, aerr := k.oaep(in.EncryptionAlgorithm, "encryptionAlgorithm")
	if aerr = firstErr(k.authorize(rc, "Decrypt"), k.stateOK(), aerr); aerr != nil {
		return nil, aerr
	}
	if len(in.CiphertextBlob) == 0 || len(in.CiphertextBlob) > maxCiphertextBlob {
		return nil, validationErr("Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length between 1 and %d", maxCiphertextBlob)
	}
	if len(in.EncryptionContext) > 0 {
		return nil, validationErr("EncryptionContext is not supported with asymmetric KMS keys (%s)", k.arn)
	}
	pt, err := rsa.DecryptOAEP(h(), nil, k.asym.rsa, in.CiphertextBlob, nil)
	if err != nil {
		return nil, clientErr(errInvalidCiphertext, "The ciphertext is invalid for %s with %s.", k.arn, in.EncryptionAlgorithm)
	}
	if in.DryRun {
		return nil, dryRunErr
	}
	return decryptOutput{KeyId: k.arn, Plaintext: pt, EncryptionAlgorithm: in.EncryptionAlgorithm}, nil
}

type getPublicKeyInput struct {
	KeyId       string
	GrantTokens []string
}

type getPublicKeyOutput struct {
	KeyId                  string   `json:"KeyId"`
	PublicKey              []byte   `json:"PublicKey"`
	CustomerMasterKeySpec  string   `json:"CustomerMasterKeySpec"`
	KeySpec                string   `json:"KeySpec"`
	KeyUsage               string   `json:"KeyUsage"`
	EncryptionAlgorithms   []string `json:"EncryptionAlgorithms,omitempty"`
	KeyAgreementAlgorithms []string `json:"KeyAgreementAlgorithms,omitempty"`
}

func (e *Emulator) getPublicKey(rc *reqCtx, body []byte) (any, *apiError) {
	var in getPublicKeyInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	if aerr := checkGrantTokens(in.GrantTokens); aerr != nil {
		return nil, aerr
	}
	k, aerr := e.resolve(rc, in.KeyId, "keyId", true)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := firstErr(k.authorize(rc, "GetPublicKey"), k.stateOK()); aerr != nil {
		return nil, aerr
	}
	if k.asym == nil {
		return nil, clientErr(errUnsupported, "%s is a %s key; GetPublicKey needs an asymmetric key.", k.arn, k.spec)
	}
	out := getPublicKeyOutput{KeyId: k.arn, PublicKey: k.asym.pubDER, CustomerMasterKeySpec: k.spec, KeySpec: k.spec, KeyUsage: k.usage}
	var m keyMetadata
	k.asym.algorithms(&m)
	out.EncryptionAlgorithms, out.KeyAgreementAlgorithms = m.EncryptionAlgorithms, m.KeyAgreementAlgorithms
	return out, nil
}

type deriveSharedSecretInput struct {
	KeyId                 string
	KeyAgreementAlgorithm string
	PublicKey             []byte
	GrantTokens           []string
	DryRun                bool
	Recipient             json.RawMessage
}

type deriveSharedSecretOutput struct {
	KeyId                 string `json:"KeyId"`
	SharedSecret          []byte `json:"SharedSecret"`
	KeyAgreementAlgorithm string `json:"KeyAgreementAlgorithm"`
	KeyOrigin             string `json:"KeyOrigin"`
}

func (e *Emulator) deriveSharedSecret(rc *reqCtx, body []byte) (any, *apiError) {
	var in deriveSharedSecretInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	switch {
	case in.KeyAgreementAlgorithm == "":
		return nil, requiredErr("keyAgreementAlgorithm")
	case in.KeyAgreementAlgorithm != algECDH:
		return nil, validationErr("Value '%s' at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [ECDH]", in.KeyAgreementAlgorithm)
	case in.PublicKey == nil:
		return nil, requiredErr("publicKey")
	}
	if aerr := firstErr(checkRecipient(in.Recipient), checkGrantTokens(in.GrantTokens)); aerr != nil {
		return nil, aerr
	}
	k, aerr := e.resolve(rc, in.KeyId, "keyId", true)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := firstErr(k.authorize(rc, "DeriveSharedSecret"), k.stateOK()); aerr != nil {
		return nil, aerr
	}
	if k.asym == nil || k.asym.ec == nil {
		return nil, clientErr(errInvalidKeyUsage, "%s key usage is %s which is not valid for DeriveSharedSecret.", k.arn, k.usage)
	}
	peer, aerr := parsePeer(in.PublicKey, k)
	if aerr != nil {
		return nil, aerr
	}
	if in.DryRun {
		return nil, dryRunErr
	}
	z, err := k.asym.ec.ECDH(peer)
	if err != nil {
		return nil, validationErr("The public key is not valid for %s: %v", k.spec, err)
	}
	return deriveSharedSecretOutput{KeyId: k.arn, SharedSecret: z, KeyAgreementAlgorithm: algECDH, KeyOrigin: "AWS_KMS"}, nil
}

// parsePeer parses DeriveSharedSecret's PublicKey: a DER
// SubjectPublicKeyInfo on the key's curve.
func parsePeer(der []byte, k key) (*ecdh.PublicKey, *apiError) {
	p, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, validationErr("The public key is not a valid DER-encoded SubjectPublicKeyInfo.")
	}
	ek, ok := p.(*ecdsa.PublicKey)
	if !ok || ek.Curve != eccCurves[k.spec] {
		return nil, validationErr("The public key's curve does not match %s (%s).", k.arn, k.spec)
	}
	peer, err := ek.ECDH()
	if err != nil {
		return nil, validationErr("The public key is not valid: %v", err)
	}
	return peer, nil
}
