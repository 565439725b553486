package spec

import (
	"slices"
	"strings"
)

// Asymmetric key providers (issue 15): ECDH key agreement, raw and with
// an AWS KMS key-agreement key, and AWS KMS RSA keys. Names follow the
// Material Providers Library.
const (
	ProviderRawECDH    = "raw-ecdh"
	ProviderAWSKMSECDH = "aws-kms-ecdh"
	ProviderAWSKMSRSA  = "aws-kms-rsa"
)

// Providers lists every key provider.
var Providers = []string{ProviderAWSKMS, ProviderHierarchy, ProviderRawAES, ProviderRawRSA, ProviderRawECDH, ProviderAWSKMSECDH, ProviderAWSKMSRSA}

// ECDH curves and key agreement schemes.
var (
	ECDHCurves       = []string{"ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"}
	RawECDHSchemes   = []string{"RawPrivateKeyToStaticPublicKey", "EphemeralPrivateKeyToStaticPublicKey", "PublicKeyDiscovery"}
	KMSECDHSchemes   = []string{"KmsPrivateKeyToStaticPublicKey", "KmsPublicKeyDiscovery"}
	KMSRSAAlgorithms = []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
)

// EncryptOnly reports whether the single group g can only encrypt (an
// ephemeral-sender ECDH group holds no private key of the recipient).
func (g *KeyGroup) EncryptOnly() bool {
	return g.Provider == ProviderRawECDH && g.Scheme == "EphemeralPrivateKeyToStaticPublicKey"
}

// DecryptOnly reports whether the single group g can only decrypt
// (discovery: it has no recipient to encrypt to).
func (g *KeyGroup) DecryptOnly() bool {
	switch g.Provider {
	case ProviderAWSKMS:
		return g.Discovery
	case ProviderRawECDH:
		return g.Scheme == "PublicKeyDiscovery"
	case ProviderAWSKMSECDH:
		return g.Scheme == "KmsPublicKeyDiscovery"
	}
	return false
}

// asymFields are the fields only the asymmetric providers take, with the
// providers that take each.
func (g *KeyGroup) asymFields() []struct {
	name      string
	set       bool
	providers []string
} {
	return []struct {
		name      string
		set       bool
		providers []string
	}{
		{"curve", g.Curve != "", []string{ProviderRawECDH, ProviderAWSKMSECDH}},
		{"scheme", g.Scheme != "", []string{ProviderRawECDH, ProviderAWSKMSECDH}},
		{"privateKeyFile", g.PrivateKeyFile != "", []string{ProviderRawECDH}},
		{"recipientPublicKeyFile", g.RecipientPublicKeyFile != "", []string{ProviderRawECDH, ProviderAWSKMSECDH}},
		{"publicKeyFile", g.PublicKeyFile != "", []string{ProviderAWSKMSECDH, ProviderAWSKMSRSA}},
		{"encryptionAlgorithm", g.EncryptionAlgorithm != "", []string{ProviderAWSKMSRSA}},
	}
}

// forbidAsymFields rejects the asymmetric-only fields a provider does not
// take.
func (g *KeyGroup) forbidAsymFields(p *Path) ErrorList {
	var errs ErrorList
	for _, f := range g.asymFields() {
		if f.set && !slices.Contains(f.providers, g.Provider) {
			errs = append(errs, Forbidden(p.Child(f.name), "only for provider "+strings.Join(f.providers, " and ")))
		}
	}
	return errs
}

// validateAsym checks a raw-ecdh, aws-kms-ecdh or aws-kms-rsa group: the
// fields its scheme needs are set, the others absent.
func (g *KeyGroup) validateAsym(p *Path) ErrorList {
	errs := g.forbidAsymFields(p)
	need := func(set bool, field, what string) {
		if !set {
			errs = append(errs, Required(p.Child(field), what))
		}
	}
	forbid := func(set bool, field, why string) {
		if set {
			errs = append(errs, Forbidden(p.Child(field), why))
		}
	}
	oneOf := func(field, v string, valid []string) {
		if v == "" {
			errs = append(errs, Required(p.Child(field), "one of "+strings.Join(valid, ", ")))
		} else if !slices.Contains(valid, v) {
			errs = append(errs, NotSupported(p.Child(field), v, valid))
		}
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"keyFile", g.KeyFile != ""}, {"keyEncoding", g.KeyEncoding != ""}, {"namespace", g.Namespace != ""},
		{"name", g.Name != ""}, {"padding", g.Padding != ""}, {"generate", g.Generate}, {"discovery", g.Discovery},
		{"discoveryFilter", g.DiscoveryFilter != nil}} {
		forbid(f.set, f.name, "not for provider "+g.Provider)
	}
	if g.Provider == ProviderRawECDH {
		for _, f := range []struct {
			name string
			set  bool
		}{{"keys", len(g.Keys) > 0}, {"grantTokens", len(g.GrantTokens) > 0}, {"region", g.Region != ""},
			{"profile", g.Profile != ""}, {"endpoint", g.Endpoint != ""}} {
			forbid(f.set, f.name, "only for AWS KMS providers")
		}
		oneOf("curve", g.Curve, ECDHCurves)
		oneOf("scheme", g.Scheme, RawECDHSchemes)
		switch g.Scheme {
		case "RawPrivateKeyToStaticPublicKey":
			need(g.PrivateKeyFile != "", "privateKeyFile", "our static private key (PKCS#8 PEM)")
			need(g.RecipientPublicKeyFile != "", "recipientPublicKeyFile", "the other party's public key (SubjectPublicKeyInfo PEM)")
		case "EphemeralPrivateKeyToStaticPublicKey":
			forbid(g.PrivateKeyFile != "", "privateKeyFile", "the ephemeral scheme makes a new sender key for every message")
			need(g.RecipientPublicKeyFile != "", "recipientPublicKeyFile", "the recipient's public key (SubjectPublicKeyInfo PEM)")
		case "PublicKeyDiscovery":
			need(g.PrivateKeyFile != "", "privateKeyFile", "the recipient's own private key (PKCS#8 PEM)")
			forbid(g.RecipientPublicKeyFile != "", "recipientPublicKeyFile", "discovery decrypts whatever sender wrote to our key")
		}
		return errs
	}
	errs = append(errs, g.validateKMSKey(p)...)
	if g.Provider == ProviderAWSKMSRSA {
		oneOf("encryptionAlgorithm", g.EncryptionAlgorithm, KMSRSAAlgorithms)
		return errs
	}
	oneOf("curve", g.Curve, ECDHCurves)
	oneOf("scheme", g.Scheme, KMSECDHSchemes)
	if g.Scheme == "KmsPrivateKeyToStaticPublicKey" {
		need(g.RecipientPublicKeyFile != "", "recipientPublicKeyFile", "the recipient's public key (SubjectPublicKeyInfo PEM)")
	} else {
		forbid(g.RecipientPublicKeyFile != "", "recipientPublicKeyFile", "discovery decrypts whatever sender wrote to our key")
	}
	return errs
}

// validateKMSKey checks the one KMS key of an aws-kms-ecdh or aws-kms-rsa
// group and its client settings.
func (g *KeyGroup) validateKMSKey(p *Path) ErrorList {
	var errs ErrorList
	switch {
	case len(g.Keys) != 1:
		errs = append(errs, Invalid(p.Child("keys"), g.Keys, "list exactly one KMS key"))
	case g.Provider == ProviderAWSKMSRSA && !kmsKeyARN.MatchString(g.Keys[0]):
		errs = append(errs, Invalid(p.Child("keys").Index(0), g.Keys[0], "want the key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID): messages record it"))
	case !kmsKeyARN.MatchString(g.Keys[0]) && !kmsAliasARN.MatchString(g.Keys[0]) && !kmsAlias.MatchString(g.Keys[0]) && !kmsKeyID.MatchString(g.Keys[0]):
		errs = append(errs, Invalid(p.Child("keys").Index(0), g.Keys[0], "want a key ARN, an alias ARN, alias/NAME or a key id"))
	}
	for i, t := range g.GrantTokens {
		if t == "" {
			errs = append(errs, Required(p.Child("grantTokens").Index(i), "remove empty grant tokens"))
		}
	}
	if e := validateEndpoint(p.Child("endpoint"), g.Endpoint); e != nil {
		errs = append(errs, e)
	}
	return errs
}

// checkDirection says why the single group m (at mp) cannot be used in
// the direction asked, or "".
func checkDirection(m *KeyGroup, forEncrypt bool) string {
	switch {
	case forEncrypt && m.DecryptOnly() && m.Provider != ProviderAWSKMS:
		return "is a " + m.Scheme + " " + m.Provider + " group, which can only decrypt; encrypt with the sender's RawPrivateKeyToStaticPublicKey or EphemeralPrivateKeyToStaticPublicKey (raw) or KmsPrivateKeyToStaticPublicKey group"
	case !forEncrypt && m.EncryptOnly():
		return "is an ephemeral-sender ECDH group (EphemeralPrivateKeyToStaticPublicKey), which can only encrypt; decrypt with the recipient's PublicKeyDiscovery or RawPrivateKeyToStaticPublicKey group"
	}
	return ""
}

// checkRSASuite rejects a signed suite for a group with an aws-kms-rsa
// key, which supports only unsigned suites.
func checkRSASuite(p *Path, g *KeyGroup, alg string) *Error {
	if g == nil {
		return nil
	}
	for _, m := range g.Singles() {
		if m.Provider != ProviderAWSKMSRSA {
			continue
		}
		s, ok := lookupSuite(orDefault(alg, DefaultAlgorithm))
		if ok && s.signed {
			return Invalid(p, orDefault(alg, DefaultAlgorithm), "the aws-kms-rsa key group supports only unsigned suites (its public key is public, so a signature proves nothing); set e.g. AES_256_GCM_HKDF_SHA512_COMMIT_KEY (0x0478)")
		}
	}
	return nil
}
