package awskms

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/encjob/encjob/crypto"
)

// ProviderIDRSA is the provider id of AWS KMS RSA encrypted data keys.
const ProviderIDRSA = "aws-kms-rsa"

// RSA encryption algorithms of the AWS KMS RSA keyring.
const (
	RSAESOAEPSHA1   = "RSAES_OAEP_SHA_1"
	RSAESOAEPSHA256 = "RSAES_OAEP_SHA_256"
)

// RSAConfig configures an AWS KMS RSA keyring.
type RSAConfig struct {
	// Client holds the client settings (Clients, Region, Profile,
	// Endpoint, retries, rate limit, GrantTokens); its Keys, Discovery and
	// filter fields are ignored.
	Client Config
	// KeyARN is the RSA KMS key (a key ARN: EDKs name it, and decryption
	// matches it).
	KeyARN string
	// Algorithm is RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256.
	Algorithm string
	// PublicKeyPEM is the key's public half (SubjectPublicKeyInfo PEM),
	// for offline encryption. Nil with FetchPublicKey: the first OnEncrypt
	// calls GetPublicKey (once; a keyring only used to decrypt never
	// does). Nil without: the keyring only decrypts.
	PublicKeyPEM   []byte
	FetchPublicKey bool
}

// RSAKeyring is the AWS KMS RSA keyring: it encrypts offline with the
// public key of an asymmetric KMS RSA key and decrypts through KMS
// Decrypt. Wire form: provider id "aws-kms-rsa", provider info the key
// ARN, ciphertext the RSA-OAEP encryption of SHA-384(canonical encryption
// context) || data key. It refuses signed algorithm suites (the public key
// being public, a signature would prove nothing), as the specification
// requires.
type RSAKeyring struct {
	key     ARN
	alg     kmstypes.EncryptionAlgorithmSpec
	hash    func() hash.Hash
	grants  []string
	clients *clientCache

	fetch bool // GetPublicKey on first use
	mu    sync.Mutex
	pub   *rsa.PublicKey // nil: decrypt only (or not fetched yet)
}

// NewRSA validates cfg and returns the keyring. It makes no KMS call (see
// RSAConfig.FetchPublicKey).
func NewRSA(ctx context.Context, cfg RSAConfig) (*RSAKeyring, error) {
	key, err := ParseARN(cfg.KeyARN)
	if err == nil && !key.IsKey() {
		err = fmt.Errorf("%s is an alias ARN; the RSA keyring needs the key ARN", cfg.KeyARN)
	}
	if err != nil {
		return nil, fmt.Errorf("awskms: RSA keyring: %w", err)
	}
	k := &RSAKeyring{key: key, alg: kmstypes.EncryptionAlgorithmSpec(cfg.Algorithm), grants: cfg.Client.GrantTokens}
	switch cfg.Algorithm {
	case RSAESOAEPSHA1:
		k.hash = sha1.New
	case RSAESOAEPSHA256:
		k.hash = sha256.New
	default:
		return nil, fmt.Errorf("awskms: RSA keyring %s: encryption algorithm %q: want %s or %s", key, cfg.Algorithm, RSAESOAEPSHA1, RSAESOAEPSHA256)
	}
	if k.clients, err = newClients(cfg.Client); err != nil {
		return nil, err
	}
	if cfg.PublicKeyPEM == nil {
		k.fetch = cfg.FetchPublicKey
		return k, nil
	}
	b, _ := pem.Decode(cfg.PublicKeyPEM)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("awskms: RSA keyring %s: the public key is not a \"PUBLIC KEY\" PEM block", key)
	}
	if k.pub, err = k.parsePublic(b.Bytes); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *RSAKeyring) parsePublic(der []byte) (*rsa.PublicKey, error) {
	p, err := x509.ParsePKIXPublicKey(der)
	pub, ok := p.(*rsa.PublicKey)
	switch {
	case err != nil || !ok:
		return nil, fmt.Errorf("awskms: RSA keyring %s: the public key is not an RSA SubjectPublicKeyInfo", k.key)
	case pub.N.BitLen() < 2048:
		return nil, fmt.Errorf("awskms: RSA keyring %s: the public key has %d bits; KMS RSA keys have at least 2048", k.key, pub.N.BitLen())
	}
	return pub, nil
}

// publicKey returns the encryption key, fetching it on first use (a failed
// fetch is retried by the next call: it may have been throttled).
func (k *RSAKeyring) publicKey(ctx context.Context) (*rsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pub != nil || !k.fetch {
		return k.pub, nil
	}
	der, err := k.fetchPublicKey(ctx)
	if err != nil {
		return nil, err
	}
	pub, err := k.parsePublic(der)
	if err != nil {
		return nil, err
	}
	k.pub = pub
	return pub, nil
}

func (k *RSAKeyring) fetchPublicKey(ctx context.Context) ([]byte, error) {
	api, err := asymClient(ctx, k.clients, k.key.String(), "")
	if err != nil {
		return nil, err
	}
	out, err := publicKey(ctx, api, k.key.String(), k.grants, kmstypes.KeyUsageTypeEncryptDecrypt,
		kmstypes.KeySpecRsa2048, kmstypes.KeySpecRsa3072, kmstypes.KeySpecRsa4096)
	if err != nil {
		return nil, err
	}
	return out.PublicKey, nil
}

func (k *RSAKeyring) String() string { return fmt.Sprintf("AWS KMS RSA key %s (%s)", k.key, k.alg) }

// KeyARN returns the configured key ARN.
func (k *RSAKeyring) KeyARN() string { return k.key.String() }

// ErrSignedSuite: the AWS KMS RSA keyring refuses signed algorithm suites.
var ErrSignedSuite = errors.New("awskms: the AWS KMS RSA keyring supports only unsigned algorithm suites")

// contextDigest is SHA-384 of the canonical encryption context.
func contextDigest(ec crypto.EncryptionContext) ([]byte, error) {
	b, err := ec.Serialize()
	if err != nil {
		return nil, err
	}
	sum := sha512.Sum384(b)
	return sum[:], nil
}

// OnEncrypt generates the data key when m has none and wraps it with the
// public key, offline.
func (k *RSAKeyring) OnEncrypt(ctx context.Context, m *crypto.EncryptionMaterials) error {
	switch {
	case m == nil || m.Suite == nil:
		return fmt.Errorf("awskms: %s: encryption materials have no algorithm suite", k)
	case m.Suite.Signed():
		return fmt.Errorf("%s: %w (suite %s is signed)", k, ErrSignedSuite, m.Suite.Hex())
	}
	pub, err := k.publicKey(ctx)
	switch {
	case err != nil:
		return err
	case pub == nil:
		return fmt.Errorf("awskms: %s: no public key to encrypt with (give the public key, or allow GetPublicKey): %w", k, crypto.ErrCannotGenerate)
	}
	digest, err := contextDigest(m.Context)
	if err != nil {
		return fmt.Errorf("awskms: %s: %w", k, err)
	}
	dk := m.DataKey
	if dk == nil {
		dk = make([]byte, m.Suite.KeyLen)
		if _, err := rand.Read(dk); err != nil {
			return err
		}
	}
	plain := append(digest, dk...)
	defer clear(plain)
	ct, err := rsa.EncryptOAEP(k.hash(), rand.Reader, pub, plain, nil)
	if err != nil {
		if m.DataKey == nil {
			clear(dk)
		}
		return fmt.Errorf("awskms: %s: %w", k, err)
	}
	m.DataKey = dk
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, crypto.EncryptedDataKey{ProviderID: ProviderIDRSA, ProviderInfo: []byte(k.key.String()), Ciphertext: ct})
	return nil
}

// MatchesEDK implements crypto.EDKMatcher: provider id aws-kms-rsa and the
// provider info this key's ARN (or a replica of it).
func (k *RSAKeyring) MatchesEDK(edk crypto.EncryptedDataKey) bool {
	return rsaMatcher{k.key}.MatchesEDK(edk)
}

type rsaMatcher struct{ key ARN }

func (m rsaMatcher) MatchesEDK(edk crypto.EncryptedDataKey) bool {
	if edk.ProviderID != ProviderIDRSA {
		return false
	}
	a, err := ParseARN(string(edk.ProviderInfo))
	return err == nil && a.IsKey() && MRKMatch(m.key, a)
}

// NewRSAMatcher returns the EDK matcher of the RSA keyring of keyARN
// without building it (no client, no call).
func NewRSAMatcher(keyARN string) (crypto.EDKMatcher, error) {
	a, err := ParseARN(keyARN)
	if err == nil && !a.IsKey() {
		err = fmt.Errorf("%s is an alias ARN", keyARN)
	}
	if err != nil {
		return nil, fmt.Errorf("awskms: RSA key: %w", err)
	}
	return rsaMatcher{a}, nil
}

// OnDecrypt calls KMS Decrypt (KeyId and EncryptionAlgorithm set) for each
// matching EDK in order, and checks the encryption context digest.
func (k *RSAKeyring) OnDecrypt(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey) error {
	if m == nil || m.Suite == nil {
		return errors.New("awskms: decryption materials have no algorithm suite")
	}
	if m.DataKey != nil {
		return nil
	}
	nm := &noMatchError{keys: []string{k.key.String()}}
	if m.Suite.Signed() {
		nm.skipped = append(nm.skipped, fmt.Sprintf("all: %v (suite %s is signed)", ErrSignedSuite, m.Suite.Hex()))
		return nm
	}
	digest, err := contextDigest(m.Context)
	if err != nil {
		return fmt.Errorf("awskms: %s: %w", k, err)
	}
	for i, edk := range edks {
		if !k.MatchesEDK(edk) {
			if edk.ProviderID == ProviderIDRSA {
				nm.skipped = append(nm.skipped, fmt.Sprintf("%s (not the configured key)", edk.ProviderInfo))
			}
			continue
		}
		if err := k.decrypt(ctx, m, digest, edk); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return ctx.Err()
		} else {
			nm.failures = append(nm.failures, fmt.Errorf("encrypted data key %d: %w", i, err))
		}
	}
	return nm
}

func (k *RSAKeyring) decrypt(ctx context.Context, m *crypto.DecryptionMaterials, digest []byte, edk crypto.EncryptedDataKey) error {
	id := k.key.String()
	api, err := k.clients.client(ctx, k.key.Region)
	if err != nil {
		return &KeyError{Key: id, Op: "Decrypt", Kind: KindUnknown, Err: err}
	}
	out, err := api.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: edk.Ciphertext,
		EncryptionAlgorithm: k.alg, GrantTokens: k.grants})
	if err != nil {
		return newKeyError(id, "Decrypt", err)
	}
	defer clear(out.Plaintext)
	bad := func(format string, args ...any) error {
		return &KeyError{Key: id, Op: "Decrypt", Kind: KindInvalidResponse, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case out.KeyId == nil || *out.KeyId != id:
		return bad("response KeyId is not the requested key")
	case len(out.Plaintext) != len(digest)+m.Suite.KeyLen:
		return bad("plaintext is %d bytes, want %d (context digest and data key)", len(out.Plaintext), len(digest)+m.Suite.KeyLen)
	case subtle.ConstantTimeCompare(out.Plaintext[:len(digest)], digest) != 1:
		return &KeyError{Key: id, Op: "Decrypt", Kind: KindInvalidCiphertext, Err: errors.New("the encryption context does not match the one the data key was wrapped with")}
	}
	m.DataKey, m.DecryptedWith = append([]byte(nil), out.Plaintext[len(digest):]...), id
	return nil
}

var (
	_ crypto.Keyring    = (*RSAKeyring)(nil)
	_ crypto.EDKMatcher = (*RSAKeyring)(nil)
)
