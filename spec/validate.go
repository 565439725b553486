package spec

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/encjob/encjob/internal/pathglob"
)

// Validators are optional hooks that check names this package only
// stores. A nil hook means the built-in list (the ESDK suites and
// commitment policies, duplicated here so spec does not import crypto);
// callers may plug in crypto.ParseSuite / crypto.ParseCommitmentPolicy.
type Validators struct {
	Algorithm        func(name string) error
	CommitmentPolicy func(name string) error
}

type suiteInfo struct {
	id                 string
	name               string
	committing, signed bool
}

// suites mirrors crypto/suite.go.
var suites = []suiteInfo{
	{"0x0014", "AES_128_GCM_IV12_TAG16", false, false},
	{"0x0046", "AES_192_GCM_IV12_TAG16", false, false},
	{"0x0078", "AES_256_GCM_IV12_TAG16", false, false},
	{"0x0114", "AES_128_GCM_IV12_TAG16_HKDF_SHA256", false, false},
	{"0x0146", "AES_192_GCM_IV12_TAG16_HKDF_SHA256", false, false},
	{"0x0178", "AES_256_GCM_IV12_TAG16_HKDF_SHA256", false, false},
	{"0x0214", "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", false, true},
	{"0x0346", "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", false, true},
	{"0x0378", "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", false, true},
	{"0x0478", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", true, false},
	{"0x0578", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", true, true},
}

// DefaultAlgorithm is the suite used when none is given.
const DefaultAlgorithm = "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"

// Commitment policies, as crypto/policy.go names them.
const (
	PolicyRequireEncryptRequireDecrypt = "require-encrypt-require-decrypt"
	PolicyRequireEncryptAllowDecrypt   = "require-encrypt-allow-decrypt"
	PolicyForbidEncryptAllowDecrypt    = "forbid-encrypt-allow-decrypt"
)

var commitmentPolicies = []string{PolicyRequireEncryptRequireDecrypt, PolicyRequireEncryptAllowDecrypt, PolicyForbidEncryptAllowDecrypt}

// lookupSuite accepts a name (any case) or a hex id (0x0578 or 0578).
func lookupSuite(v string) (suiteInfo, bool) {
	t := strings.TrimSpace(v)
	for _, s := range suites {
		if strings.EqualFold(t, s.name) || strings.EqualFold(t, s.id) || strings.EqualFold("0x"+t, s.id) {
			return s, true
		}
	}
	return suiteInfo{}, false
}

func suiteNames() []string {
	out := make([]string, len(suites))
	for i, s := range suites {
		out[i] = s.name
	}
	return out
}

// normPolicy maps REQUIRE_ENCRYPT_REQUIRE_DECRYPT to the kebab-case name.
func normPolicy(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"))
}

func (v *Validators) algorithm(p *Path, name string) *Error {
	if v != nil && v.Algorithm != nil {
		if err := v.Algorithm(name); err != nil {
			return Invalid(p, name, err.Error())
		}
		return nil
	}
	if _, ok := lookupSuite(name); !ok {
		return NotSupported(p, name, suiteNames())
	}
	return nil
}

func (v *Validators) commitmentPolicy(p *Path, name string) *Error {
	if v != nil && v.CommitmentPolicy != nil {
		if err := v.CommitmentPolicy(name); err != nil {
			return Invalid(p, name, err.Error())
		}
		return nil
	}
	if !slices.Contains(commitmentPolicies, normPolicy(name)) {
		return NotSupported(p, name, commitmentPolicies)
	}
	return nil
}

// checkSuitePolicy reports an algorithm the commitment policy forbids
// for encryption (only for suites in the built-in table).
func checkSuitePolicy(p *Path, alg, policy string) *Error {
	if alg == "" {
		alg = DefaultAlgorithm
	}
	s, ok := lookupSuite(alg)
	if !ok {
		return nil
	}
	switch pol := normPolicy(policy); {
	case pol == PolicyForbidEncryptAllowDecrypt && s.committing:
		return Invalid(p, alg, "commitment policy forbid-encrypt-allow-decrypt needs a non-committing suite")
	case pol != PolicyForbidEncryptAllowDecrypt && slices.Contains(commitmentPolicies, pol) || pol == "":
		if !s.committing {
			return Invalid(p, alg, "commitment policy "+orDefault(pol, PolicyRequireEncryptRequireDecrypt)+" needs a committing suite (AES_256_GCM_HKDF_SHA512_COMMIT_KEY or ..._ECDSA_P384); set commitmentPolicy: forbid-encrypt-allow-decrypt to write messages for ESDK 1.x readers")
		}
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

var (
	dnsName     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	labelValue  = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
	labelName   = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	groupName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	bucketName  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	kmsKeyARN   = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$`)
	kmsAliasARN = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:alias/[A-Za-z0-9/_-]+$`)
	kmsAlias    = regexp.MustCompile(`^alias/[A-Za-z0-9/_-]+$`)
	kmsKeyID    = regexp.MustCompile(`^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-fA-F]{32})$`)
	account     = regexp.MustCompile(`^[0-9]{12}$`)
	partition   = regexp.MustCompile(`^aws(-[a-z]+)*$`)
)

func validateMetadata(m *Metadata, present bool) ErrorList {
	var errs ErrorList
	p := NewPath("metadata")
	if !present || m.Name == "" {
		errs = append(errs, Required(p.Child("name"), "name the document, e.g. name: nightly-invoices"))
	} else if len(m.Name) > 253 || !dnsName.MatchString(m.Name) {
		errs = append(errs, Invalid(p.Child("name"), m.Name, "use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"))
	}
	for _, k := range sortedKeys(m.Labels) {
		kp := p.Child("labels").Key(k)
		prefix, name, hasPrefix := strings.Cut(k, "/")
		if !hasPrefix {
			name, prefix = prefix, ""
		}
		if len(name) > 63 || !labelName.MatchString(name) || hasPrefix && (len(prefix) > 253 || !dnsName.MatchString(prefix)) {
			errs = append(errs, Invalid(kp, k, "label keys are [prefix/]name with name up to 63 letters, digits, '-', '_', '.'"))
		}
		if v := m.Labels[k]; len(v) > 63 || !labelValue.MatchString(v) {
			errs = append(errs, Invalid(kp, v, "label values are up to 63 letters, digits, '-', '_', '.'"))
		}
	}
	return errs
}

// Validate checks a job (as decoded, or as built in code, before or after
// Defaults) and returns every problem. Fields are named from the document
// root ("spec.sources[0].path"). v may be nil.
func (j *Job) Validate(v *Validators) ErrorList {
	var errs ErrorList
	sp := NewPath("spec")
	op := j.Operation
	switch op {
	case "":
		errs = append(errs, Required(sp.Child("operation"), "one of encrypt, decrypt, reencrypt"))
	case OpEncrypt, OpDecrypt, OpReencrypt:
	default:
		errs = append(errs, NotSupported(sp.Child("operation"), string(op), []string{"encrypt", "decrypt", "reencrypt"}))
	}
	errs = append(errs, validateSources(sp.Child("sources"), j.Sources)...)
	errs = append(errs, validateOutput(sp.Child("output"), &j.Output, op, j.Sources)...)
	errs = append(errs, validateKeyGroups(sp.Child("keyGroups"), j.KeyGroups)...)

	encUsed := op == OpEncrypt || op == OpReencrypt
	decUsed := op == OpDecrypt || op == OpReencrypt
	ep, dp, rp := sp.Child("encrypt"), sp.Child("decrypt"), sp.Child("reencrypt")
	if op != "" && !encUsed && !isZeroEncrypt(&j.Encrypt) {
		errs = append(errs, Forbidden(ep, "only used by operations encrypt and reencrypt"))
	}
	if op != "" && !decUsed && !isZeroDecrypt(&j.Decrypt) {
		errs = append(errs, Forbidden(dp, "only used by operations decrypt and reencrypt"))
	}
	if op != "" && op != OpReencrypt && (len(j.Reencrypt.Add) > 0 || len(j.Reencrypt.Remove) > 0 || j.Reencrypt.Mode != "" || j.Reencrypt.Require != "" || j.Reencrypt.AllowHeaderNonceReuse || j.Reencrypt.HeaderInPlace || j.Reencrypt.StoreRequiredContext) {
		errs = append(errs, Forbidden(rp, "only used by operation reencrypt"))
	}
	if encUsed {
		errs = append(errs, j.validateEncrypt(ep, v)...)
		if op == OpReencrypt && len(j.Encrypt.Context) > 0 {
			errs = append(errs, Forbidden(ep.Child("context"), "reencrypt keeps each message's context; edit it with reencrypt.add and reencrypt.remove"))
		}
	}
	if decUsed {
		errs = append(errs, validateGroupRef(dp.Child("keyGroup"), j.Decrypt.KeyGroup, j.KeyGroups, false)...)
		errs = append(errs, validateRequireContext(dp.Child("requireContext"), j.Decrypt.RequireContext)...)
		if j.Decrypt.MaxBodyLength < 0 {
			errs = append(errs, Invalid(dp.Child("maxBodyLength"), int64(j.Decrypt.MaxBodyLength), "must be 0 (no limit) or more"))
		}
		errs = append(errs, validateReproduced(dp, &j.Decrypt)...)
	}
	if op == OpReencrypt {
		errs = append(errs, validateRequire(rp, &j.Reencrypt)...)
		switch j.Reencrypt.EffectiveMode() {
		case "", ReencryptFull:
		case ReencryptRewrap:
			if j.Encrypt.Algorithm != "" {
				errs = append(errs, Forbidden(ep.Child("algorithm"), "reencrypt.mode rewrap keeps each message's algorithm suite (use mode full to change it)"))
			}
			if j.Encrypt.FrameLength != nil {
				errs = append(errs, Forbidden(ep.Child("frameLength"), "reencrypt.mode rewrap keeps each message's frame length (use mode full to change it)"))
			}
		default:
			errs = append(errs, NotSupported(rp.Child("mode"), j.Reencrypt.Mode, []string{ReencryptFull, ReencryptRewrap}))
		}
		if j.Reencrypt.AllowHeaderNonceReuse && j.Reencrypt.EffectiveMode() != ReencryptRewrap {
			errs = append(errs, Forbidden(rp.Child("allowHeaderNonceReuse"), "only with reencrypt.mode rewrap"))
		}
		if j.Reencrypt.HeaderInPlace && (j.Reencrypt.EffectiveMode() != ReencryptRewrap || !j.Output.InPlace) {
			errs = append(errs, Forbidden(rp.Child("headerInPlace"), "only with reencrypt.mode rewrap and output.inPlace (it overwrites the source's header)"))
		}
		errs = append(errs, validateContext(rp.Child("add"), j.Reencrypt.Add)...)
		seen := map[string]bool{}
		for i, k := range j.Reencrypt.Remove {
			p := rp.Child("remove").Index(i)
			switch {
			case k == "":
				errs = append(errs, Required(p, "name a context key"))
			case seen[k]:
				errs = append(errs, Duplicate(p, k))
			case j.Reencrypt.Add != nil && hasKey(j.Reencrypt.Add, k):
				errs = append(errs, Invalid(p, k, "the key is also in reencrypt.add, which already replaces its value"))
			}
			seen[k] = true
			if slices.Contains(j.Encrypt.RequiredContextKeys, k) {
				errs = append(errs, Invalid(p, k, "the key is in encrypt.requiredContextKeys, so the new context must keep it"))
			}
		}
	}
	if j.CommitmentPolicy != "" {
		if e := v.commitmentPolicy(sp.Child("commitmentPolicy"), j.CommitmentPolicy); e != nil {
			errs = append(errs, e)
		}
	}
	errs = append(errs, validateCommon(sp, j.MaxEncryptedDataKeys, j.Caching, &j.Execution, &j.S3, &j.KMS)...)
	if j.Metadata.Output == "-" && j.Output.Stdout {
		errs = append(errs, Invalid(sp.Child("metadata").Child("output"), "-", "output already goes to stdout; write the metadata log to a file"))
	}
	errs = append(errs, validateOverlap(sp, j)...)
	return errs
}

func hasKey[V any](m map[string]V, k string) bool { _, ok := m[k]; return ok }

func isZeroEncrypt(e *EncryptSettings) bool {
	return e.KeyGroup == "" && len(e.Context) == 0 && e.Algorithm == "" && e.FrameLength == nil && len(e.RequiredContextKeys) == 0
}

func isZeroDecrypt(d *DecryptSettings) bool {
	return d.KeyGroup == "" && len(d.RequireContext) == 0 && !d.UnsignedOnly && d.MaxBodyLength == 0 && len(d.ReproducedContext) == 0
}

// validateReproduced checks decrypt.reproducedContext: valid keys, and no
// pair contradicting decrypt.requireContext (no message could pass both).
func validateReproduced(dp *Path, d *DecryptSettings) ErrorList {
	p := dp.Child("reproducedContext")
	errs := validateContext(p, d.ReproducedContext)
	for _, k := range sortedKeys(d.ReproducedContext) {
		if want, ok := d.RequireContext[k]; ok && want != nil && *want != d.ReproducedContext[k] {
			errs = append(errs, Invalid(p.Key(k), d.ReproducedContext[k], fmt.Sprintf("decrypt.requireContext requires the value %q", *want)))
		}
	}
	return errs
}

// validateRequiredKeys checks encrypt.requiredContextKeys: distinct,
// valid, not reserved, and (encrypt, whose context is fixed) each a key
// of encrypt.context.
func (j *Job) validateRequiredKeys(ep *Path) ErrorList {
	var errs ErrorList
	seen := map[string]bool{}
	for i, k := range j.Encrypt.RequiredContextKeys {
		p := ep.Child("requiredContextKeys").Index(i)
		switch e := checkContextKey(p, k); {
		case e != nil:
			errs = append(errs, e)
		case seen[k]:
			errs = append(errs, Duplicate(p, k))
		case j.Operation == OpEncrypt && !hasKey(j.Encrypt.Context, k):
			errs = append(errs, Invalid(p, k, "not a key of encrypt.context: a required key's pair must be in every message's context"))
		}
		seen[k] = true
	}
	return errs
}

func (j *Job) validateEncrypt(ep *Path, v *Validators) ErrorList {
	var errs ErrorList
	errs = append(errs, validateGroupRef(ep.Child("keyGroup"), j.Encrypt.KeyGroup, j.KeyGroups, true)...)
	errs = append(errs, validateContext(ep.Child("context"), j.Encrypt.Context)...)
	errs = append(errs, j.validateRequiredKeys(ep)...)
	if j.Encrypt.Algorithm != "" {
		if e := v.algorithm(ep.Child("algorithm"), j.Encrypt.Algorithm); e != nil {
			errs = append(errs, e)
		}
	}
	if j.Rewrap() || (j.Operation == OpReencrypt && j.Encrypt.Algorithm == "") {
		// The suite is each message's own (a re-encryption that does not
		// name one keeps it, or takes the policy's default when the policy
		// forbids it); the policy is checked per item.
	} else if e := checkSuitePolicy(ep.Child("algorithm"), j.Encrypt.Algorithm, j.CommitmentPolicy); e != nil {
		errs = append(errs, e)
	}
	if !j.Rewrap() && (j.Operation != OpReencrypt || j.Encrypt.Algorithm != "") {
		if e := checkRSASuite(ep.Child("algorithm"), j.KeyGroups[j.Encrypt.KeyGroup], j.Encrypt.Algorithm); e != nil {
			errs = append(errs, e)
		}
	}
	if f := j.Encrypt.FrameLength; f != nil && (*f < 0 || *f > maxFrameLen) {
		errs = append(errs, Invalid(ep.Child("frameLength"), *f, fmt.Sprintf("must be 1..%d bytes, or 0 for a non-framed message", maxFrameLen)))
	}
	return errs
}

// validateGroupRef checks a reference to a key group; forEncrypt also
// requires a group that can encrypt.
func validateGroupRef(p *Path, name string, groups map[string]*KeyGroup, forEncrypt bool) ErrorList {
	if name == "" {
		return ErrorList{Required(p, "name one of spec.keyGroups")}
	}
	g, ok := groups[name]
	if !ok {
		return ErrorList{Invalid(p, name, "no such key group; defined: "+strings.Join(sortedKeys(groups), ", "))}
	}
	if g == nil {
		return nil
	}
	var errs ErrorList
	gp := NewPath("spec", "keyGroups").Key(name)
	for i, m := range g.Singles() {
		mp := gp
		if len(g.Members) > 0 {
			mp = gp.Child("members").Index(i)
		}
		if forEncrypt && m.Provider == ProviderAWSKMS && m.Discovery {
			if len(g.Members) > 0 {
				return ErrorList{Invalid(p, name, mp.String()+" is a discovery group, which can only decrypt; name the keys to encrypt under")}
			}
			return ErrorList{Invalid(p, name, "a discovery key group can only decrypt; name the keys to encrypt under")}
		}
		if why := checkDirection(m, forEncrypt); why != "" {
			if len(g.Members) > 0 {
				why = mp.String() + " " + why
			} else {
				why = "key group " + why
			}
			return ErrorList{Invalid(p, name, why)}
		}
		if !forEncrypt && m.Provider == ProviderAWSKMS && !m.Discovery {
			for j, k := range m.Keys {
				if k != "" && !kmsKeyARN.MatchString(k) && (kmsAliasARN.MatchString(k) || kmsAlias.MatchString(k) || kmsKeyID.MatchString(k)) {
					errs = append(errs, Invalid(mp.Child("keys").Index(j), k,
						"a key group used to decrypt must name keys by key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), as aws-encryption-cli requires; or set discovery: true"))
				}
			}
		}
	}
	return errs
}

func validateSources(p *Path, srcs []Source) ErrorList {
	var errs ErrorList
	if len(srcs) == 0 {
		return ErrorList{Required(p, "list at least one source path")}
	}
	seen := map[string]bool{}
	for i := range srcs {
		s := &srcs[i]
		sp := p.Index(i)
		switch {
		case s.Path == "":
			errs = append(errs, Required(sp.Child("path"), "a local path, - for stdin, or s3://bucket/prefix"))
		case seen[s.Path]:
			errs = append(errs, Duplicate(sp.Child("path"), s.Path))
		default:
			if e := validateLocation(sp.Child("path"), s.Path); e != nil {
				errs = append(errs, e)
			}
		}
		seen[s.Path] = true
		if s.Path == "-" {
			if len(s.Include) > 0 || len(s.Exclude) > 0 {
				errs = append(errs, Forbidden(sp.Child("include"), "stdin has no names to filter"))
			}
			if len(srcs) > 1 {
				errs = append(errs, Invalid(sp.Child("path"), "-", "stdin must be the only source"))
			}
		}
		if s.FollowSymlinks && s.IsS3() {
			errs = append(errs, Forbidden(sp.Child("followSymlinks"), "S3 has no symlinks"))
		}
		for _, f := range []struct {
			name  string
			globs []string
		}{{"include", s.Include}, {"exclude", s.Exclude}} {
			for k, g := range f.globs {
				if _, err := pathglob.Compile(g); err != nil {
					errs = append(errs, Invalid(sp.Child(f.name).Index(k), g, patternReason(err)))
				}
			}
		}
		switch s.Format {
		case "", "esdk", "kms":
		default:
			errs = append(errs, NotSupported(sp.Child("format"), s.Format, []string{"esdk", "kms"}))
		}
		if e := checkEncoding(sp.Child("encoding"), s.Encoding); e != nil {
			errs = append(errs, e)
		}
	}
	return errs
}

func checkEncoding(p *Path, enc string) *Error {
	switch enc {
	case "", "binary", "base64":
		return nil
	}
	return NotSupported(p, enc, []string{"binary", "base64"})
}

// validateLocation checks an s3:// URL; local paths are checked later,
// when they are opened.
func validateLocation(p *Path, loc string) *Error {
	if strings.ContainsRune(loc, 0) {
		return Invalid(p, loc, "contains a NUL byte")
	}
	if !strings.HasPrefix(loc, "s3://") {
		if strings.Contains(loc, "://") {
			return Invalid(p, loc, "only local paths and s3://bucket/prefix URLs are supported")
		}
		return nil
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(loc, "s3://"), "/")
	if !bucketName.MatchString(bucket) || strings.Contains(bucket, "..") {
		return Invalid(p, loc, "want s3://bucket/prefix with a bucket name of 3-63 lowercase letters, digits, '.' and '-'")
	}
	if seg, ok := ambiguousKey(key); ok {
		return Invalid(p, loc, "the key has "+seg+" segment: S3 servers disagree on such keys (AWS S3 keeps them as written, file-backed servers merge them with the plain spelling), so whether it overlaps another location, or escapes its prefix, cannot be decided; spell it without")
	}
	return nil
}

// ambiguousKey reports whether an S3 key or prefix has an empty ("//",
// a leading "/"), "." or ".." segment; one trailing "/" marks a prefix
// and is fine.
func ambiguousKey(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	for _, seg := range strings.Split(strings.TrimSuffix(key, "/"), "/") {
		switch seg {
		case "":
			return "an empty", true
		case ".", "..":
			return "a \"" + seg + "\"", true
		}
	}
	return "", false
}

func validateOutput(p *Path, o *Output, op Operation, srcs []Source) ErrorList {
	var errs ErrorList
	n := 0
	for _, set := range []bool{o.Path != "", o.InPlace, o.Stdout} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		errs = append(errs, Required(p.Child("path"), "set output.path, output.inPlace: true or output.stdout: true"))
	case n > 1:
		f := "inPlace"
		if o.Stdout {
			f = "stdout"
		}
		errs = append(errs, Forbidden(p.Child(f), "output.path, output.inPlace and output.stdout exclude each other"))
	}
	if o.Path != "" {
		if e := validateLocation(p.Child("path"), o.Path); e != nil {
			errs = append(errs, e)
		}
	}
	if o.InPlace || o.Stdout {
		what := "inPlace"
		if o.Stdout {
			what = "stdout"
		}
		if o.Suffix != "" {
			errs = append(errs, Forbidden(p.Child("suffix"), "no names are derived with "+what))
		}
		if o.StripSuffix != "" {
			errs = append(errs, Forbidden(p.Child("stripSuffix"), "no names are derived with "+what))
		}
	}
	if o.InPlace {
		for _, s := range srcs {
			if s.Path == "-" {
				errs = append(errs, Invalid(p.Child("inPlace"), true, "stdin cannot be replaced in place"))
				break
			}
		}
	}
	for _, f := range []struct{ name, v string }{{"suffix", o.Suffix}, {"stripSuffix", o.StripSuffix}} {
		if strings.ContainsAny(f.v, "/\x00") {
			errs = append(errs, Invalid(p.Child(f.name), f.v, "a suffix cannot contain '/'"))
		}
	}
	switch o.Overwrite {
	case "", OverwriteNever, OverwriteIfNewer, OverwriteAlways:
	default:
		errs = append(errs, NotSupported(p.Child("overwrite"), o.Overwrite, []string{OverwriteNever, OverwriteIfNewer, OverwriteAlways}))
	}
	if o.Verify && op == OpDecrypt {
		errs = append(errs, Forbidden(p.Child("verify"), "verify re-decrypts what encrypt and reencrypt write; decrypt output is already verified"))
	}
	if e := checkEncoding(p.Child("encoding"), o.Encoding); e != nil {
		errs = append(errs, e)
	}
	return errs
}

func validateKeyGroups(p *Path, groups map[string]*KeyGroup) ErrorList {
	var errs ErrorList
	if len(groups) == 0 {
		return ErrorList{Required(p, "define at least one key group")}
	}
	for _, name := range sortedKeys(groups) {
		gp := p.Key(name)
		if !groupName.MatchString(name) {
			errs = append(errs, Invalid(gp, name, "key group names are letters, digits, '_', '.', '-'"))
		}
		g := groups[name]
		if g == nil {
			errs = append(errs, Required(gp.Child("provider"), "aws-kms, raw-aes or raw-rsa"))
			continue
		}
		errs = append(errs, g.validate(gp)...)
	}
	return errs
}

func (g *KeyGroup) validate(p *Path) ErrorList {
	var errs ErrorList
	forbid := func(set bool, field, why string) {
		if set {
			errs = append(errs, Forbidden(p.Child(field), why))
		}
	}
	awsOnly := "only for provider aws-kms"
	if len(g.Members) > 0 {
		return g.validateMembers(p)
	}
	if g.Provider == ProviderHierarchy {
		return append(g.validateHierarchy(p), g.forbidAsymFields(p)...)
	}
	errs = append(errs, g.forbidHierarchyFields(p, hierarchyOnly)...)
	switch g.Provider {
	case "":
		return ErrorList{Required(p.Child("provider"), strings.Join(Providers, ", ")+", or list members")}
	case ProviderRawECDH, ProviderAWSKMSECDH, ProviderAWSKMSRSA:
		return g.validateAsym(p)
	case ProviderAWSKMS:
		errs = append(errs, g.validateAWSKMS(p)...)
	case ProviderRawAES, ProviderRawRSA:
		if g.KeyFile == "" {
			errs = append(errs, Required(p.Child("keyFile"), "the file holding the wrapping key"))
		}
		if g.Namespace == "" {
			errs = append(errs, Required(p.Child("namespace"), "the key namespace (provider id) recorded in each message"))
		} else if strings.HasPrefix(g.Namespace, "aws-kms") {
			errs = append(errs, Invalid(p.Child("namespace"), g.Namespace, "the aws-kms namespace is reserved for KMS keys"))
		}
		if g.Name == "" {
			errs = append(errs, Required(p.Child("name"), "the key name recorded in each message"))
		}
		if g.Provider == ProviderRawAES {
			switch g.KeyEncoding {
			case "", "raw", "base64":
			default:
				errs = append(errs, NotSupported(p.Child("keyEncoding"), g.KeyEncoding, []string{"raw", "base64"}))
			}
			forbid(g.Padding != "", "padding", "only for provider raw-rsa")
		} else {
			forbid(g.KeyEncoding != "", "keyEncoding", "raw-rsa key files are PEM")
			paddings := []string{"oaep-sha1", "oaep-sha256", "oaep-sha384", "oaep-sha512", "pkcs1"}
			switch {
			case g.Padding == "":
				errs = append(errs, Required(p.Child("padding"), "one of "+strings.Join(paddings, ", ")+"; it must match the padding messages were written with"))
			case !slices.Contains(paddings, g.Padding):
				errs = append(errs, NotSupported(p.Child("padding"), g.Padding, paddings))
			}
		}
		forbid(len(g.Keys) > 0, "keys", awsOnly)
		forbid(g.Discovery, "discovery", awsOnly)
		forbid(g.DiscoveryFilter != nil, "discoveryFilter", awsOnly)
		forbid(len(g.GrantTokens) > 0, "grantTokens", awsOnly)
		forbid(g.Region != "", "region", awsOnly)
		forbid(g.Profile != "", "profile", awsOnly)
		forbid(g.Endpoint != "", "endpoint", awsOnly)
	default:
		return ErrorList{NotSupported(p.Child("provider"), g.Provider, Providers)}
	}
	return append(errs, g.forbidAsymFields(p)...)
}

// validateAWSKMS checks the fields of an aws-kms group.
func (g *KeyGroup) validateAWSKMS(p *Path) ErrorList {
	var errs ErrorList
	forbid := func(set bool, field, why string) {
		if set {
			errs = append(errs, Forbidden(p.Child(field), why))
		}
	}
	rawOnly := "only for providers raw-aes and raw-rsa"
	if g.Discovery {
		forbid(len(g.Keys) > 0, "keys", "a discovery group takes no keys; use discoveryFilter to limit accounts")
	} else if len(g.Keys) == 0 {
		errs = append(errs, Required(p.Child("keys"), "list key ARNs, key ids or alias/NAME, or set discovery: true"))
	}
	seen := map[string]bool{}
	for i, k := range g.Keys {
		kp := p.Child("keys").Index(i)
		switch {
		case k == "":
			errs = append(errs, Required(kp, "a key ARN, key id or alias/NAME"))
		case seen[k]:
			errs = append(errs, Duplicate(kp, k))
		case !kmsKeyARN.MatchString(k) && !kmsAliasARN.MatchString(k) && !kmsAlias.MatchString(k) && !kmsKeyID.MatchString(k):
			errs = append(errs, Invalid(kp, k, "want a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), an alias ARN, alias/NAME or a key id"))
		}
		seen[k] = true
	}
	if f := g.DiscoveryFilter; f != nil {
		fp := p.Child("discoveryFilter")
		if !g.Discovery {
			errs = append(errs, Forbidden(fp, "only with discovery: true"))
		}
		if len(f.Accounts) == 0 {
			errs = append(errs, Required(fp.Child("accounts"), "list 12-digit AWS account ids"))
		}
		for i, a := range f.Accounts {
			if !account.MatchString(a) {
				errs = append(errs, Invalid(fp.Child("accounts").Index(i), a, "want a 12-digit AWS account id"))
			}
		}
		if f.Partition == "" {
			errs = append(errs, Required(fp.Child("partition"), "e.g. aws, aws-cn, aws-us-gov"))
		} else if !partition.MatchString(f.Partition) {
			errs = append(errs, Invalid(fp.Child("partition"), f.Partition, "e.g. aws, aws-cn, aws-us-gov"))
		}
	}
	for i, t := range g.GrantTokens {
		if t == "" {
			errs = append(errs, Required(p.Child("grantTokens").Index(i), "remove empty grant tokens"))
		}
	}
	if e := validateEndpoint(p.Child("endpoint"), g.Endpoint); e != nil {
		errs = append(errs, e)
	}
	forbid(g.KeyFile != "", "keyFile", rawOnly)
	forbid(g.KeyEncoding != "", "keyEncoding", rawOnly)
	forbid(g.Namespace != "", "namespace", rawOnly)
	forbid(g.Name != "", "name", rawOnly)
	forbid(g.Padding != "", "padding", "only for provider raw-rsa")
	forbid(g.Generate, "generate", rawOnly)
	return errs
}

// validateMembers checks a group made of member groups: it sets nothing
// but members, and each member is a valid single-provider group.
func (g *KeyGroup) validateMembers(p *Path) ErrorList {
	var errs ErrorList
	own := "a group with members has no provider or keys of its own; set this on a member"
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"provider", g.Provider != ""}, {"keys", len(g.Keys) > 0}, {"discovery", g.Discovery},
		{"discoveryFilter", g.DiscoveryFilter != nil}, {"grantTokens", len(g.GrantTokens) > 0},
		{"region", g.Region != ""}, {"profile", g.Profile != ""}, {"endpoint", g.Endpoint != ""},
		{"keyFile", g.KeyFile != ""}, {"keyEncoding", g.KeyEncoding != ""}, {"namespace", g.Namespace != ""},
		{"name", g.Name != ""}, {"padding", g.Padding != ""}, {"generate", g.Generate},
		{"curve", g.Curve != ""}, {"scheme", g.Scheme != ""}, {"privateKeyFile", g.PrivateKeyFile != ""},
		{"recipientPublicKeyFile", g.RecipientPublicKeyFile != ""}, {"publicKeyFile", g.PublicKeyFile != ""},
		{"encryptionAlgorithm", g.EncryptionAlgorithm != ""},
	} {
		if f.set {
			errs = append(errs, Forbidden(p.Child(f.name), own))
		}
	}
	errs = append(errs, g.forbidHierarchyFields(p, own)...)
	rawSeen := map[string]bool{} // provider namespace/name of raw members
	for i := range g.Members {
		m := &g.Members[i]
		mp := p.Child("members").Index(i)
		if len(m.Members) > 0 {
			errs = append(errs, Forbidden(mp.Child("members"), "members cannot be nested; list every single-provider group in the outer members"))
			continue
		}
		errs = append(errs, m.validate(mp)...)
		if m.Provider == ProviderRawAES || m.Provider == ProviderRawRSA {
			id := m.Provider + " " + m.Namespace + "/" + m.Name
			if m.Namespace != "" && m.Name != "" && rawSeen[id] {
				errs = append(errs, Duplicate(mp.Child("name"), m.Name))
			}
			rawSeen[id] = true
		}
	}
	return errs
}

func validateEndpoint(p *Path, e string) *Error {
	if e == "" {
		return nil
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Invalid(p, e, "want an http:// or https:// URL")
	}
	return nil
}

func validateContext(p *Path, c map[string]string) ErrorList {
	var errs ErrorList
	for _, k := range sortedKeys(c) {
		if e := checkContextKey(p.Key(k), k); e != nil {
			errs = append(errs, e)
		}
	}
	return errs
}

func validateRequireContext(p *Path, c map[string]*string) ErrorList {
	var errs ErrorList
	for _, k := range sortedKeys(c) {
		if e := checkContextKey(p.Key(k), k); e != nil {
			errs = append(errs, e)
		}
	}
	return errs
}

func checkContextKey(p *Path, k string) *Error {
	switch {
	case k == "":
		return Invalid(p, k, "context keys must not be empty")
	case strings.HasPrefix(k, "aws-crypto-"):
		return Invalid(p, k, "keys starting with aws-crypto- are reserved for the ESDK")
	}
	return nil
}

func validateCommon(sp *Path, maxEDK int, c *Caching, x *Execution, s3 *S3Config, k *KMSConfig) ErrorList {
	var errs ErrorList
	// No upper bound, as the ESDKs and aws-encryption-cli: a message holds
	// at most 65535 encrypted data keys, so any larger limit is no limit.
	if maxEDK < 0 {
		errs = append(errs, Invalid(sp.Child("maxEncryptedDataKeys"), maxEDK, "must be 1 or more (0 or unset = the default, 10 or the key count of the largest key group)"))
	}
	if c != nil {
		cp := sp.Child("caching")
		if c.Capacity < 0 {
			errs = append(errs, Invalid(cp.Child("capacity"), c.Capacity, "must be 1 or more (0 = default 100)"))
		}
		if c.MaxAge.Duration == 0 {
			errs = append(errs, Required(cp.Child("maxAge"), "how long cached data keys may be reused, e.g. 5m"))
		} else if c.MaxAge.Duration < 0 {
			errs = append(errs, Invalid(cp.Child("maxAge"), c.MaxAge.String(), "must be positive"))
		}
		if c.MaxMessagesEncrypted < 0 || c.MaxMessagesEncrypted > 1<<32 {
			errs = append(errs, Invalid(cp.Child("maxMessagesEncrypted"), c.MaxMessagesEncrypted, "must be 1 to 2^32 (0 = 2^32)"))
		}
		if c.MaxBytesEncrypted < 0 {
			errs = append(errs, Invalid(cp.Child("maxBytesEncrypted"), int64(c.MaxBytesEncrypted), "must not be negative"))
		}
	}
	xp := sp.Child("execution")
	if x.Concurrency < 0 || x.Concurrency > 4096 {
		errs = append(errs, Invalid(xp.Child("concurrency"), x.Concurrency, "must be 1 to 4096 (0 or unset = 2×GOMAXPROCS)"))
	}
	switch x.OnError {
	case "", OnErrorContinue, OnErrorFailFast:
	default:
		errs = append(errs, NotSupported(xp.Child("onError"), x.OnError, []string{OnErrorContinue, OnErrorFailFast}))
	}
	if x.Retries != nil && (*x.Retries < 0 || *x.Retries > 100) {
		errs = append(errs, Invalid(xp.Child("retries"), *x.Retries, "must be 0 to 100"))
	}
	if x.Shards < 0 {
		errs = append(errs, Invalid(xp.Child("shards"), x.Shards, "must be 1 or more"))
	}
	s3p := sp.Child("s3")
	if s3.PartSize != 0 && (s3.PartSize < minPartSize || s3.PartSize > maxPartSize) {
		errs = append(errs, Invalid(s3p.Child("partSize"), s3.PartSize.String(), "must be 5MiB to 5GiB (S3 multipart limits)"))
	}
	if e := validateEndpoint(s3p.Child("endpoint"), s3.Endpoint); e != nil {
		errs = append(errs, e)
	}
	if d := s3.Timeout.Duration; d < 0 || (d > 0 && d < 100*time.Millisecond) || d > 24*time.Hour {
		errs = append(errs, Invalid(s3p.Child("timeout"), d.String(), "must be 100ms to 24h (0 or unset = default 60s without progress)"))
	}
	kp := sp.Child("kms")
	if k.RateLimit < 0 {
		errs = append(errs, Invalid(kp.Child("rateLimit"), k.RateLimit, "requests per second; 0 = unlimited"))
	}
	switch k.RetryMode {
	case "", RetryStandard, RetryAdaptive:
	default:
		errs = append(errs, NotSupported(kp.Child("retryMode"), k.RetryMode, []string{RetryStandard, RetryAdaptive}))
	}
	if k.MaxAttempts < 0 || k.MaxAttempts > 100 {
		errs = append(errs, Invalid(kp.Child("maxAttempts"), k.MaxAttempts, "must be 1 to 100 (0 = default 3)"))
	}
	if e := validateEndpoint(kp.Child("endpoint"), k.Endpoint); e != nil {
		errs = append(errs, e)
	}
	if d := k.Timeout.Duration; d < 0 || (d > 0 && d < 100*time.Millisecond) || d > time.Hour {
		errs = append(errs, Invalid(kp.Child("timeout"), d.String(), "must be 100ms to 1h (0 or unset = default 30s per attempt)"))
	}
	return errs
}

// Validate checks a policy and returns every problem; v may be nil.
func (p *Policy) Validate(v *Validators) ErrorList {
	var errs ErrorList
	sp := NewPath("spec")
	errs = append(errs, validateSources(sp.Child("sources"), p.Sources)...)
	for i, s := range p.Sources {
		if s.Path == "-" {
			errs = append(errs, Invalid(sp.Child("sources").Index(i).Child("path"), "-", "a policy applies in place; stdin cannot be a policy source"))
		}
	}
	errs = append(errs, validateKeyGroups(sp.Child("keyGroups"), p.KeyGroups)...)
	if len(p.Rules) == 0 {
		errs = append(errs, Required(sp.Child("rules"), "list at least one rule"))
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		rp := sp.Child("rules").Index(i)
		if len(r.Match) == 0 {
			errs = append(errs, Required(rp.Child("match"), "list path or s3:// patterns"))
		}
		for k, g := range r.Match {
			if _, err := pathglob.Compile(g); err != nil {
				errs = append(errs, Invalid(rp.Child("match").Index(k), g, patternReason(err)))
			}
		}
		if r.Exempt {
			for _, f := range []struct {
				name string
				set  bool
			}{{"keyGroup", r.KeyGroup != ""}, {"requireContext", len(r.RequireContext) > 0}, {"requiredContextKeys", len(r.RequiredContextKeys) > 0}, {"algorithm", r.Algorithm != ""},
				{"requireSigned", r.RequireSigned}, {"requireCommitting", r.RequireCommitting},
				{"reencrypt", r.Reencrypt.Mode != "" || r.Reencrypt.Require != "" || r.Reencrypt.AllowHeaderNonceReuse || r.Reencrypt.HeaderInPlace}} {
				if f.set {
					errs = append(errs, Forbidden(rp.Child(f.name), "an exempt rule only matches"))
				}
			}
			continue
		}
		errs = append(errs, validateGroupRef(rp.Child("keyGroup"), r.KeyGroup, p.KeyGroups, true)...)
		errs = append(errs, validateRequireContext(rp.Child("requireContext"), r.RequireContext)...)
		errs = append(errs, validateRuleReencrypt(rp.Child("reencrypt"), &r.Reencrypt)...)
		for k, key := range r.RequiredContextKeys {
			if v, ok := r.RequireContext[key]; !ok || v == nil || slices.Contains(r.RequiredContextKeys[:k], key) {
				errs = append(errs, Invalid(rp.Child("requiredContextKeys").Index(k), key, "must be a key of requireContext with a value (reconciliation reproduces it), listed once"))
			}
		}
		if r.Algorithm != "" {
			if e := v.algorithm(rp.Child("algorithm"), r.Algorithm); e != nil {
				errs = append(errs, e)
				continue
			}
		}
		if e := checkSuitePolicy(rp.Child("algorithm"), r.Algorithm, p.CommitmentPolicy); e != nil {
			errs = append(errs, e)
		}
		if s, ok := lookupSuite(orDefault(r.Algorithm, DefaultAlgorithm)); ok {
			if r.RequireSigned && !s.signed {
				errs = append(errs, Invalid(rp.Child("algorithm"), r.Algorithm, "requireSigned needs a signed (ECDSA) suite"))
			}
			if r.RequireCommitting && !s.committing {
				errs = append(errs, Invalid(rp.Child("algorithm"), r.Algorithm, "requireCommitting needs a committing suite"))
			}
		}
	}
	seen := map[string]bool{}
	for i, g := range p.DecryptKeyGroups {
		gp := sp.Child("decryptKeyGroups").Index(i)
		if seen[g] {
			errs = append(errs, Duplicate(gp, g))
			continue
		}
		seen[g] = true
		errs = append(errs, validateGroupRef(gp, g, p.KeyGroups, false)...)
	}
	if p.CommitmentPolicy != "" {
		if e := v.commitmentPolicy(sp.Child("commitmentPolicy"), p.CommitmentPolicy); e != nil {
			errs = append(errs, e)
		}
	}
	errs = append(errs, validateCommon(sp, p.MaxEncryptedDataKeys, p.Caching, &p.Execution, &p.S3, &p.KMS)...)
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// validateRequire checks reencrypt.require: rewrap or full, and not
// contradicting an explicit mode (require rewrap with mode full, or
// require full with mode rewrap, asks for two things at once).
func validateRequire(rp *Path, r *ReencryptSettings) ErrorList {
	switch {
	case r.Require == "":
		return nil
	case r.Require != ReencryptFull && r.Require != ReencryptRewrap:
		return ErrorList{NotSupported(rp.Child("require"), r.Require, []string{ReencryptRewrap, ReencryptFull})}
	case r.Mode != "" && r.Mode != r.Require:
		return ErrorList{Invalid(rp.Child("require"), r.Require, fmt.Sprintf("contradicts reencrypt.mode %s (require %s implies mode %s; drop one)", r.Mode, r.Require, r.Require))}
	}
	return nil
}

// validateRuleReencrypt checks a policy rule's reencrypt settings: a mode
// and its opt-in, no context edits (the rule's requireContext is the edit).
func validateRuleReencrypt(rp *Path, r *ReencryptSettings) ErrorList {
	errs := validateRequire(rp, r)
	switch r.Mode {
	case "", ReencryptFull, ReencryptRewrap:
	default:
		errs = append(errs, NotSupported(rp.Child("mode"), r.Mode, []string{ReencryptFull, ReencryptRewrap}))
	}
	if r.AllowHeaderNonceReuse && r.EffectiveMode() != ReencryptRewrap {
		errs = append(errs, Forbidden(rp.Child("allowHeaderNonceReuse"), "only with reencrypt.mode rewrap"))
	}
	if r.HeaderInPlace && r.EffectiveMode() != ReencryptRewrap {
		errs = append(errs, Forbidden(rp.Child("headerInPlace"), "only with reencrypt.mode rewrap"))
	}
	if len(r.Add) > 0 || len(r.Remove) > 0 {
		errs = append(errs, Forbidden(rp, "a rule's context edit is its requireContext: add and remove are job fields"))
	}
	return errs
}
