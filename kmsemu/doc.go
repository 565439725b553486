// Package kmsemu is an in-memory AWS KMS that speaks the service's wire
// protocol (AWS JSON 1.1: POST / with X-Amz-Target: TrentService.<Operation>),
// so that code using the unmodified aws-sdk-go-v2 KMS client runs against it
// with only the endpoint changed. Use it in-process from tests:
//
//	emu, err := kmsemu.New(seed)              // seed from ParseSeed/LoadSeed, or nil
//	srv := httptest.NewServer(emu)
//	client := kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(srv.URL) })
//
// or as a standalone command on loopback (go run ./cmd/kmsemu --seed keys.yaml).
//
// # What it implements
//
// CreateKey, DescribeKey, ListKeys, CreateAlias, ListAliases, Encrypt,
// Decrypt, ReEncrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext,
// EnableKey, DisableKey, ScheduleKeyDeletion, GetPublicKey and
// DeriveSharedSecret, with the service's request
// and response members, error types ({"__type":"NotFoundException",
// "message":"..."}) and HTTP status codes (400 for client errors and
// ThrottlingException, 412 for DryRunOperationException, 500 for
// KMSInternalException), so the SDK returns its typed errors. The other
// TrentService operations answer UnsupportedOperationException.
//
// One emulator serves every account and region. The region of a request is
// the region of its SigV4 credential scope; a request without a well-formed
// AWS4-HMAC-SHA256 Authorization header is rejected with
// MissingAuthenticationTokenException or IncompleteSignatureException.
// KeyId members accept a key id, key ARN, alias name or alias ARN where the
// service does (EnableKey, DisableKey, ScheduleKeyDeletion and CreateAlias's
// TargetKeyId take only key ids and key ARNs); an ARN naming another region
// or account than the key's is NotFoundException. The caller's account is the
// seed's Account: bare key ids and alias names resolve there, and CreateKey,
// ListKeys and ListAliases operate there; keys of other accounts are reached
// by ARN.
//
// Cryptography is real: AES-256-GCM under each key's 256-bit material, a
// random nonce per ciphertext, and the key's account and id plus the
// encryption context authenticated as additional data. Decrypt therefore
// needs no KeyId, rejects a KeyId naming another key (IncorrectKeyException)
// and rejects a different encryption context (InvalidCiphertextException).
// A multi-region key (id mrk-...) exists in its primary region and each
// replica region with the same material, so a ciphertext produced in one
// region decrypts in the others.
//
// Asymmetric keys (KeySpec in CreateKey or the seed): RSA_2048, RSA_3072
// and RSA_4096 for ENCRYPT_DECRYPT with RSAES_OAEP_SHA_1 and
// RSAES_OAEP_SHA_256 (Encrypt, and Decrypt with the KeyId and algorithm
// named, as the service requires for asymmetric ciphertexts; no
// encryption context), and ECC_NIST_P256/P384/P521 for KEY_AGREEMENT
// (DeriveSharedSecret with ECDH and a DER SubjectPublicKeyInfo on the
// key's curve). GetPublicKey returns their DER public key. Using a key for
// what its usage forbids is InvalidKeyUsageException, GetPublicKey of a
// symmetric key UnsupportedOperationException, as in the service.
//
// The emulator enforces key state (DisabledException; KMSInvalidStateException
// when pending deletion), key usage (InvalidKeyUsageException), the 4096-byte
// Encrypt plaintext limit, the 6144-byte ciphertext limit, NumberOfBytes
// 1..1024 and KeySpec AES_256/AES_128, at most 10 grant tokens, DryRun, and
// a seed key's allowedOperations, denied with AccessDeniedException in the
// wording of an IAM denial ("User: ... is not authorized to perform:
// kms:Decrypt on resource: arn:..."). Faults (latency, jitter, a
// ThrottlingException rate and a 5xx rate) and per-operation call counters
// are available through SetFaults, Calls and the admin endpoint. A counter
// counts every attempt that passed the Authorization check and named an
// implemented operation, whatever its outcome: a throttled attempt and the
// SDK's retry of it are two calls.
//
// # Seed files
//
// A seed declares the keys (see Seed and SeedKey, and testdata/keys.yaml):
//
//	account: "111122223333"          # default account of keys; the caller's account
//	region: us-east-1                # default region of keys
//	keys:
//	  - id: 1234abcd-12ab-34cd-56ef-1234567890ab
//	    aliases: [alias/app]
//	  - id: mrk-1234abcd12ab34cd56ef1234567890ab
//	    replicas: [eu-west-1]        # same key material in eu-west-1
//	  - account: "444455556666"      # id generated; reachable by ARN only
//	    allowedOperations: [DescribeKey, Encrypt, GenerateDataKey]
//	    enabled: false
//
// # Admin endpoint
//
// The emulator's handler also serves, on the same listener, without
// authentication and never subject to injected faults:
//
//	GET  /_emu/calls   {"Decrypt":3,"Encrypt":5,...}: every implemented operation, zeros included
//	POST /_emu/reset   sets every counter to zero; 204 No Content
//	GET  /_emu/faults  the current faults, as below
//	POST /_emu/faults  {"latency":"5ms","jitter":"2ms","throttleRate":0.3,"errorRate":0.05}
//	                   replaces the faults (absent members are zero); 200 with the new faults
//	GET  /_emu/keys    [{"arn":"arn:aws:kms:...","state":"Enabled","aliases":["alias/x"]},...]
//
// Admin errors are 400 (bad body), 404 (unknown path) or 405 (wrong method)
// with a body {"error":"..."}.
//
// # What real KMS does that the emulator does not reproduce
//
//   - Signatures are not verified: the emulator shares no secret with its
//     clients, so any credentials work. Only the shape of the Authorization
//     header, the X-Amz-Date/Date header and the credential scope's service
//     (kms) are checked, and the scope's region is used for routing.
//   - No IAM, key policies, grants or cross-account authorization: the
//     caller may use any key it can name; the seed's allowedOperations is the
//     only authorization model. Policy, Tags and GrantTokens are accepted and
//     ignored. The caller's identity (and account) does not depend on the
//     access key.
//   - Only symmetric encryption keys (SYMMETRIC_DEFAULT) do cryptography: no
//     asymmetric, HMAC or key-agreement keys, signing, data key pairs,
//     GenerateRandom, imported key material, custom key stores, XKS, or
//     Recipient (Nitro Enclaves attestation).
//   - The ciphertext blob format is the emulator's own: real KMS ciphertexts
//     do not decrypt here and vice versa.
//   - No quotas or rate limits other than injected throttling; no request
//     quotas per account or key.
//   - Key deletion never completes (there is no clock; the key stays
//     PendingDeletion), and there is no CancelKeyDeletion, DeleteAlias,
//     UpdateAlias, key rotation, ReplicateKey or UpdatePrimaryRegion. Each
//     regional copy of a multi-region key has its own state;
//     PendingReplicaDeletion is not modelled.
//   - No AWS managed keys or alias/aws/* aliases; no CloudTrail.
//   - State lives in memory and is lost when the emulator stops.
//   - Pagination markers are the emulator's own; error messages resemble
//     the service's but are not byte-identical (types and status codes are).
package kmsemu
