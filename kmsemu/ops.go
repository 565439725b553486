package kmsemu

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Each handler validates its input as the service's front end does, then
// resolves the key, authorizes, checks the key's state and usage, and only
// then does any cryptography (outside the lock, on a copy of the key).

func (e *Emulator) createKey(rc *reqCtx, body []byte) (any, *apiError) {
	var in createKeyInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	if in.KeySpec != "" && in.CustomerMasterKeySpec != "" {
		return nil, clientErr(errValidation, "You cannot specify KeySpec and CustomerMasterKeySpec in the same request.")
	}
	spec, usage := in.KeySpec+in.CustomerMasterKeySpec, in.KeyUsage
	if spec == "" {
		spec = specSymmetic
	}
	if usage == "" {
		usage = usageEncrypt
	}
	_, asymmetric := asymSpecs[spec]
	switch msg := checkSpecUsage(spec, usage); {
	case asymmetric && usage == "SIGN_VERIFY":
		return nil, clientErr(errUnsupported, "kmsemu does not support SIGN_VERIFY keys (KeySpec %s)", spec)
	case msg != "" && !asymmetric && spec != specSymmetic:
		return nil, clientErr(errUnsupported, "%s", msg)
	case msg != "":
		return nil, clientErr(errValidation, "%s", msg)
	case asymmetric && in.MultiRegion:
		return nil, clientErr(errUnsupported, "kmsemu does not support multi-Region asymmetric keys")
	case in.Origin != "" && in.Origin != "AWS_KMS":
		return nil, clientErr(errUnsupported, "kmsemu supports only Origin AWS_KMS, not %s", in.Origin)
	case in.CustomKeyStoreId != "" || in.XksKeyId != "":
		return nil, clientErr(errUnsupported, "kmsemu does not support custom key stores")
	case len(in.Description) > 8192:
		return nil, validationErr("Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192")
	}
	var mat *material
	var asym *asymKey
	var err error
	if asymmetric {
		asym, err = newAsymKey(spec)
	} else {
		mat, err = newMaterial(nil)
	}
	if err != nil {
		return nil, newErr(errInternal, http.StatusInternalServerError, "%v", err)
	}
	loc := keyLoc{rc.account, rc.region, newKeyID()}
	var mrk *mrkSet
	if in.MultiRegion {
		loc.id = newMRKID()
		mrk = &mrkSet{primary: rc.region}
	}
	k := &key{
		keyLoc: loc, arn: keyARN(loc), created: time.Now(),
		description: in.Description, usage: usage, spec: spec,
		mat: mat, asym: asym, mrk: mrk, state: stateEnabled,
	}
	e.mu.Lock()
	e.keys[loc] = k
	md := k.metadata()
	e.mu.Unlock()
	return keyMetadataOutput{md}, nil
}

func (e *Emulator) describeKey(rc *reqCtx, body []byte) (any, *apiError) {
	var in keyIDInput
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
	if aerr := k.authorize(rc, "DescribeKey"); aerr != nil {
		return nil, aerr
	}
	return keyMetadataOutput{k.metadata()}, nil
}

// page validates Limit and Marker; markers are base64url of the last name
// returned.
func page(in listInput, defLimit, maxLimit int) (limit int, after string, aerr *apiError) {
	limit = defLimit
	if in.Limit != nil {
		limit = *in.Limit
		if limit < 1 || limit > maxLimit {
			return 0, "", validationErr("Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and %d", limit, maxLimit)
		}
	}
	if in.Marker != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.Marker)
		if err != nil || len(b) == 0 {
			return 0, "", clientErr(errInvalidMarker, "Invalid marker: %q", in.Marker)
		}
		after = string(b)
	}
	return limit, after, nil
}

func (e *Emulator) listKeys(rc *reqCtx, body []byte) (any, *apiError) {
	var in listInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	limit, after, aerr := page(in, 100, 1000)
	if aerr != nil {
		return nil, aerr
	}
	e.mu.RLock()
	var ids []string
	for loc := range e.keys {
		if loc.account == rc.account && loc.region == rc.region && loc.id > after {
			ids = append(ids, loc.id)
		}
	}
	e.mu.RUnlock()
	slices.Sort(ids)
	out := listKeysOutput{Keys: []keyListEntry{}}
	for i, id := range ids {
		if i == limit {
			out.Truncated = true
			out.NextMarker = base64.RawURLEncoding.EncodeToString([]byte(ids[i-1]))
			break
		}
		out.Keys = append(out.Keys, keyListEntry{KeyId: id, KeyArn: keyARN(keyLoc{rc.account, rc.region, id})})
	}
	return out, nil
}

func (e *Emulator) listAliases(rc *reqCtx, body []byte) (any, *apiError) {
	var in listInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	limit, after, aerr := page(in, 50, 100)
	if aerr != nil {
		return nil, aerr
	}
	var target string
	if in.KeyId != "" {
		k, aerr := e.resolve(rc, in.KeyId, "keyId", false)
		if aerr != nil {
			return nil, aerr
		}
		if k.account != rc.account {
			return nil, clientErr(errAccessDenied, "ListAliases lists aliases of the caller's account %s only; %s is in %s", rc.account, k.arn, k.account)
		}
		target = k.id
	}
	e.mu.RLock()
	var as []alias
	for loc, a := range e.aliases {
		if loc.account == rc.account && loc.region == rc.region && loc.name > after && (target == "" || a.target == target) {
			as = append(as, *a)
		}
	}
	e.mu.RUnlock()
	slices.SortFunc(as, func(a, b alias) int { return strings.Compare(a.name, b.name) })
	out := listAliasesOutput{Aliases: []aliasListEntry{}}
	for i, a := range as {
		if i == limit {
			out.Truncated = true
			out.NextMarker = base64.RawURLEncoding.EncodeToString([]byte(as[i-1].name))
			break
		}
		out.Aliases = append(out.Aliases, aliasListEntry{
			AliasName: a.name, AliasArn: aliasARN(a.aliasLoc), TargetKeyId: a.target,
			CreationDate: epoch(a.created), LastUpdatedDate: epoch(a.created),
		})
	}
	return out, nil
}

func (e *Emulator) createAlias(rc *reqCtx, body []byte) (any, *apiError) {
	var in createAliasInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	if in.AliasName == "" {
		return nil, requiredErr("aliasName")
	}
	if msg := checkAliasName(in.AliasName); msg != "" {
		return nil, clientErr(errInvalidAlias, "Alias name %s is not valid: %s", in.AliasName, msg)
	}
	k, aerr := e.resolve(rc, in.TargetKeyId, "targetKeyId", false)
	if aerr != nil {
		return nil, aerr
	}
	if k.account != rc.account {
		return nil, clientErr(errNotFound, "Key '%s' does not exist in the caller's account %s", k.arn, rc.account)
	}
	if aerr := k.authorize(rc, "CreateAlias"); aerr != nil {
		return nil, aerr
	}
	loc := aliasLoc{rc.account, rc.region, in.AliasName}
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur := e.keys[k.keyLoc]; cur == nil || cur.state == statePending {
		return nil, clientErr(errInvalidState, "%s is pending deletion.", k.arn)
	}
	if _, dup := e.aliases[loc]; dup {
		return nil, clientErr(errAlreadyExists, "An alias with the name %s already exists", aliasARN(loc))
	}
	e.aliases[loc] = &alias{aliasLoc: loc, target: k.id, created: time.Now()}
	return struct{}{}, nil
}

func checkGrantTokens(t []string) *apiError {
	if len(t) > 10 {
		return validationErr("Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	return nil
}

var dryRunErr = newErr(errDryRun, http.StatusPreconditionFailed, "The request would have succeeded, but the DryRun option is set.")

func (e *Emulator) encrypt(rc *reqCtx, body []byte) (any, *apiError) {
	var in encryptInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	switch {
	case in.Plaintext == nil:
		return nil, requiredErr("plaintext")
	case len(in.Plaintext) == 0:
		return nil, validationErr("Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case len(in.Plaintext) > maxPlaintext:
		return nil, validationErr("Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to %d", maxPlaintext)
	}
	if aerr := checkGrantTokens(in.GrantTokens); aerr != nil {
		return nil, aerr
	}
	k, aerr := e.resolve(rc, in.KeyId, "keyId", true)
	if aerr != nil {
		return nil, aerr
	}
	if k.asym != nil {
		return e.encryptRSA(rc, k, in)
	}
	if aerr := firstErr(k.authorize(rc, "Encrypt"), k.usable("Encrypt"), checkAlgorithm(in.EncryptionAlgorithm, "encryptionAlgorithm")); aerr != nil {
		return nil, aerr
	}
	if in.DryRun {
		return nil, dryRunErr
	}
	blob := k.mat.seal(blobHeader{k.account, k.id}, in.Plaintext, in.EncryptionContext)
	return encryptOutput{CiphertextBlob: blob, KeyId: k.arn, EncryptionAlgorithm: algSymmetric}, nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...*apiError) *apiError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// openBlob finds the key that sealed blob (in the request's region),
// checks it against the optional keyID the caller named, authorizes perm,
// and decrypts. It is shared by Decrypt and ReEncrypt.
func (e *Emulator) openBlob(rc *reqCtx, blob []byte, ec map[string]string, keyID, keyMember, alg, algMember, perm string) (key, []byte, *apiError) {
	switch {
	case blob == nil:
		return key{}, nil, requiredErr("ciphertextBlob")
	case len(blob) == 0 || len(blob) > maxCiphertextBlob:
		return key{}, nil, validationErr("Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length between 1 and %d", maxCiphertextBlob)
	}
	if aerr := checkAlgorithm(alg, algMember); aerr != nil {
		return key{}, nil, aerr
	}
	var named *key
	if keyID != "" {
		k, aerr := e.resolve(rc, keyID, keyMember, true)
		if aerr != nil {
			return key{}, nil, aerr
		}
		named = &k
	}
	h, head, nonce, sealed, err := parseBlob(blob)
	if err != nil {
		return key{}, nil, clientErr(errInvalidCiphertext, "The ciphertext is invalid or was not produced by kmsemu.")
	}
	loc := keyLoc{h.account, rc.region, h.keyID}
	if named != nil && named.keyLoc != loc {
		return key{}, nil, clientErr(errIncorrectKey, "The key ID in the request does not identify a KMS key that can perform this operation: the ciphertext was encrypted under %s, not %s.", keyARN(loc), named.arn)
	}
	e.mu.RLock()
	kp, ok := e.keys[loc]
	var k key
	if ok {
		k = *kp
	}
	e.mu.RUnlock()
	if !ok {
		return key{}, nil, clientErr(errNotFound, "Key '%s' does not exist", keyARN(loc))
	}
	if aerr := firstErr(k.authorize(rc, perm), k.usable(perm)); aerr != nil {
		return key{}, nil, aerr
	}
	pt, err := k.mat.open(head, nonce, sealed, ec)
	if err != nil {
		return key{}, nil, clientErr(errInvalidCiphertext, "The ciphertext or encryption context is invalid for %s.", k.arn)
	}
	return k, pt, nil
}

func (e *Emulator) decrypt(rc *reqCtx, body []byte) (any, *apiError) {
	var in decryptInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	if aerr := checkRecipient(in.Recipient); aerr != nil {
		return nil, aerr
	}
	if aerr := checkGrantTokens(in.GrantTokens); aerr != nil {
		return nil, aerr
	}
	if in.KeyId != "" {
		// An asymmetric ciphertext does not name its key: KeyId does.
		if k, aerr := e.resolve(rc, in.KeyId, "keyId", true); aerr == nil && k.asym != nil {
			return e.decryptRSA(rc, k, in)
		}
	}
	k, pt, aerr := e.openBlob(rc, in.CiphertextBlob, in.EncryptionContext, in.KeyId, "keyId", in.EncryptionAlgorithm, "encryptionAlgorithm", "Decrypt")
	if aerr != nil {
		return nil, aerr
	}
	if in.DryRun {
		return nil, dryRunErr
	}
	return decryptOutput{KeyId: k.arn, Plaintext: pt, EncryptionAlgorithm: algSymmetric}, nil
}

func checkRecipient(r []byte) *apiError {
	if len(r) > 0 && string(r) != "null" {
		return clientErr(errUnsupported, "kmsemu does not support Recipient (Nitro Enclaves attestation)")
	}
	return nil
}

func (e *Emulator) reEncrypt(rc *reqCtx, body []byte) (any, *apiError) {
	var in reEncryptInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	if in.DestinationKeyId == "" {
		return nil, requiredErr("destinationKeyId")
	}
	if aerr := firstErr(checkGrantTokens(in.GrantTokens), checkAlgorithm(in.DestinationEncryptionAlgorithm, "destinationEncryptionAlgorithm")); aerr != nil {
		return nil, aerr
	}
	src, pt, aerr := e.openBlob(rc, in.CiphertextBlob, in.SourceEncryptionContext, in.SourceKeyId, "sourceKeyId", in.SourceEncryptionAlgorithm, "sourceEncryptionAlgorithm", "ReEncryptFrom")
	if aerr != nil {
		return nil, aerr
	}
	dst, aerr := e.resolve(rc, in.DestinationKeyId, "destinationKeyId", true)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := firstErr(dst.authorize(rc, "ReEncryptTo"), dst.usable("ReEncrypt")); aerr != nil {
		return nil, aerr
	}
	if in.DryRun {
		return nil, dryRunErr
	}
	blob := dst.mat.seal(blobHeader{dst.account, dst.id}, pt, in.DestinationEncryptionContext)
	clear(pt)
	return reEncryptOutput{
		CiphertextBlob: blob, SourceKeyId: src.arn, KeyId: dst.arn,
		SourceEncryptionAlgorithm: algSymmetric, DestinationEncryptionAlgorithm: algSymmetric,
	}, nil
}

func (e *Emulator) generateDataKey(rc *reqCtx, body []byte) (any, *apiError) {
	return e.genDataKey(rc, body, "GenerateDataKey", true)
}

func (e *Emulator) generateDataKeyWithoutPlaintext(rc *reqCtx, body []byte) (any, *apiError) {
	return e.genDataKey(rc, body, "GenerateDataKeyWithoutPlaintext", false)
}

func (e *Emulator) genDataKey(rc *reqCtx, body []byte, op string, withPlaintext bool) (any, *apiError) {
	var in generateDataKeyInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	var n int
	switch {
	case in.NumberOfBytes != nil && in.KeySpec != "":
		return nil, clientErr(errValidation, "Please specify either number of bytes or key spec, not both.")
	case in.NumberOfBytes != nil:
		n = *in.NumberOfBytes
		if n < 1 || n > 1024 {
			return nil, validationErr("Value '%d' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024", n)
		}
	case in.KeySpec == "AES_256":
		n = 32
	case in.KeySpec == "AES_128":
		n = 16
	case in.KeySpec != "":
		return nil, validationErr("Value '%s' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]", in.KeySpec)
	default:
		return nil, clientErr(errValidation, "Please specify either number of bytes or key spec.")
	}
	if withPlaintext {
		if aerr := checkRecipient(in.Recipient); aerr != nil {
			return nil, aerr
		}
	}
	if aerr := checkGrantTokens(in.GrantTokens); aerr != nil {
		return nil, aerr
	}
	k, aerr := e.resolve(rc, in.KeyId, "keyId", true)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := firstErr(k.authorize(rc, op), k.usable(op)); aerr != nil {
		return nil, aerr
	}
	if in.DryRun {
		return nil, dryRunErr
	}
	dk := make([]byte, n)
	rand.Read(dk)
	out := generateDataKeyOutput{CiphertextBlob: k.mat.seal(blobHeader{k.account, k.id}, dk, in.EncryptionContext), KeyId: k.arn}
	if withPlaintext {
		out.Plaintext = dk
	}
	return out, nil
}

// setState applies a state transition to the key a KeyId names.
func (e *Emulator) setState(rc *reqCtx, body []byte, op string, apply func(*key) *apiError) (*key, *apiError) {
	var in keyIDInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	return e.transition(rc, in.KeyId, op, apply)
}

func (e *Emulator) transition(rc *reqCtx, keyID, op string, apply func(*key) *apiError) (*key, *apiError) {
	k, aerr := e.resolve(rc, keyID, "keyId", false)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := k.authorize(rc, op); aerr != nil {
		return nil, aerr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.keys[k.keyLoc]
	if aerr := apply(cur); aerr != nil {
		return nil, aerr
	}
	c := *cur
	return &c, nil
}

func (e *Emulator) enableKey(rc *reqCtx, body []byte) (any, *apiError) {
	return e.setEnabled(rc, body, "EnableKey", stateEnabled)
}

func (e *Emulator) disableKey(rc *reqCtx, body []byte) (any, *apiError) {
	return e.setEnabled(rc, body, "DisableKey", stateDisabled)
}

// setEnabled moves a key to the Enabled or Disabled state; a key pending
// deletion can be neither, as in KMS.
func (e *Emulator) setEnabled(rc *reqCtx, body []byte, op string, to string) (any, *apiError) {
	_, aerr := e.setState(rc, body, op, func(k *key) *apiError {
		if k.state == statePending {
			return clientErr(errInvalidState, "%s is pending deletion.", k.arn)
		}
		k.state = to
		return nil
	})
	if aerr != nil {
		return nil, aerr
	}
	return struct{}{}, nil
}

func (e *Emulator) scheduleKeyDeletion(rc *reqCtx, body []byte) (any, *apiError) {
	var in scheduleKeyDeletionInput
	if aerr := decodeInput(body, &in); aerr != nil {
		return nil, aerr
	}
	days := 30
	if in.PendingWindowInDays != nil {
		days = *in.PendingWindowInDays
		if days < 7 || days > 30 {
			return nil, validationErr("Value '%d' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30", days)
		}
	}
	k, aerr := e.transition(rc, in.KeyId, "ScheduleKeyDeletion", func(k *key) *apiError {
		if k.state == statePending {
			return clientErr(errInvalidState, "%s is pending deletion.", k.arn)
		}
		k.state = statePending
		k.deletion = time.Now().Add(time.Duration(days) * 24 * time.Hour)
		return nil
	})
	if aerr != nil {
		return nil, aerr
	}
	return scheduleKeyDeletionOutput{KeyId: k.arn, DeletionDate: epoch(k.deletion), KeyState: statePending, PendingWindowInDays: days}, nil
}
