package kmsemu_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestErrors checks that each failure reaches the SDK as the error type real
// KMS returns (typed where the SDK has a type) with the real HTTP status.
func TestErrors(t *testing.T) {
	v := newEnv(t)
	c := v.client(east)
	cw := v.client(west)
	bg := context.Background()
	ec := map[string]string{"a": "1"}
	blobApp := must[*kms.EncryptOutput](t)(c.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: []byte("p"), EncryptionContext: ec})).CiphertextBlob
	blobEncOnly := must[*kms.EncryptOutput](t)(c.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(idEncOnly), Plaintext: []byte("p")})).CiphertextBlob
	must[*kms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(bg, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(idScheduled), PendingWindowInDays: aws.Int32(7)}))
	enc := func(keyID string, pt []byte) func() error {
		return func() error {
			_, err := c.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: pt})
			return err
		}
	}
	describe := func(cl *kms.Client, keyID string) func() error {
		return func() error {
			_, err := cl.DescribeKey(bg, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
			return err
		}
	}
	gdk := func(in kms.GenerateDataKeyInput) func() error {
		return func() error {
			in.KeyId = aws.String(idApp)
			_, err := c.GenerateDataKey(bg, &in)
			return err
		}
	}
	for _, tc := range []struct {
		name   string
		call   func() error
		typed  func(error) bool // nil: the SDK has no type for this error
		code   string
		status int
		msg    []string // substrings the message must contain
	}{
		{"unknown key id", describe(c, "00000000-0000-4000-8000-000000000000"), isA[types.NotFoundException], "NotFoundException", 400, nil},
		{"malformed key id", describe(c, "not-a-key"), isA[types.NotFoundException], "NotFoundException", 400, nil},
		{"unknown alias", describe(c, "alias/nope"), isA[types.NotFoundException], "NotFoundException", 400, nil},
		{"ARN of another region", describe(cw, arn(acct, east, idApp)), isA[types.NotFoundException], "NotFoundException", 400, nil},
		{"ARN of another account", describe(c, arn("999988887777", east, idApp)), isA[types.NotFoundException], "NotFoundException", 400, nil},
		{"bare id of another account", describe(c, idOther), isA[types.NotFoundException], "NotFoundException", 400, nil},
		{"disabled key", enc(idDisabled, []byte("p")), isA[types.DisabledException], "DisabledException", 400, []string{arn(acct, east, idDisabled)}},
		{"key pending deletion", enc(idScheduled, []byte("p")), isA[types.KMSInvalidStateException], "KMSInvalidStateException", 400, nil},
		{"plaintext over 4096 bytes", enc(idApp, make([]byte, 4097)), nil, "ValidationException", 400, []string{"4096"}},
		{"signing key", enc(idSign, []byte("p")), isA[types.InvalidKeyUsageException], "InvalidKeyUsageException", 400, nil},
		{"asymmetric algorithm", func() error {
			_, err := c.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: []byte("p"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
			return err
		}, isA[types.InvalidKeyUsageException], "InvalidKeyUsageException", 400, nil},
		{"decrypt not allowed", func() error {
			_, err := c.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: blobEncOnly})
			return err
		}, nil, "AccessDeniedException", 400, []string{"is not authorized to perform: kms:Decrypt on resource: " + arn(acct, east, idEncOnly)}},
		{"re-encrypt not allowed", func() error {
			_, err := c.ReEncrypt(bg, &kms.ReEncryptInput{CiphertextBlob: blobApp, SourceEncryptionContext: ec, DestinationKeyId: aws.String(idEncOnly)})
			return err
		}, nil, "AccessDeniedException", 400, []string{"kms:ReEncryptTo on resource: " + arn(acct, east, idEncOnly)}},
		{"data key without plaintext not allowed", func() error {
			_, err := c.GenerateDataKeyWithoutPlaintext(bg, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(idEncOnly), KeySpec: types.DataKeySpecAes256})
			return err
		}, nil, "AccessDeniedException", 400, []string{"kms:GenerateDataKeyWithoutPlaintext"}},
		{"wrong encryption context", func() error {
			_, err := c.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: blobApp, EncryptionContext: map[string]string{"a": "2"}})
			return err
		}, isA[types.InvalidCiphertextException], "InvalidCiphertextException", 400, nil},
		{"missing encryption context", func() error {
			_, err := c.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: blobApp})
			return err
		}, isA[types.InvalidCiphertextException], "InvalidCiphertextException", 400, nil},
		{"tampered ciphertext", func() error {
			b := append([]byte(nil), blobApp...)
			b[len(b)-1] ^= 1
			_, err := c.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: b, EncryptionContext: ec})
			return err
		}, isA[types.InvalidCiphertextException], "InvalidCiphertextException", 400, nil},
		{"garbage ciphertext", func() error {
			_, err := c.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: []byte("not a kms ciphertext blob at all")})
			return err
		}, isA[types.InvalidCiphertextException], "InvalidCiphertextException", 400, nil},
		{"decrypt with another KeyId", func() error {
			_, err := c.Decrypt(bg, &kms.DecryptInput{CiphertextBlob: blobApp, EncryptionContext: ec, KeyId: aws.String("alias/global")})
			return err
		}, isA[types.IncorrectKeyException], "IncorrectKeyException", 400, nil},
		{"NumberOfBytes 0", gdk(kms.GenerateDataKeyInput{NumberOfBytes: aws.Int32(0)}), nil, "ValidationException", 400, nil},
		{"NumberOfBytes 1025", gdk(kms.GenerateDataKeyInput{NumberOfBytes: aws.Int32(1025)}), nil, "ValidationException", 400, nil},
		{"neither NumberOfBytes nor KeySpec", gdk(kms.GenerateDataKeyInput{}), nil, "ValidationException", 400, nil},
		{"NumberOfBytes and KeySpec", gdk(kms.GenerateDataKeyInput{NumberOfBytes: aws.Int32(32), KeySpec: types.DataKeySpecAes256}), nil, "ValidationException", 400, nil},
		{"unknown KeySpec", gdk(kms.GenerateDataKeyInput{KeySpec: "AES_512"}), nil, "ValidationException", 400, nil},
		{"dry run", func() error {
			_, err := c.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: []byte("p"), DryRun: aws.Bool(true)})
			return err
		}, isA[types.DryRunOperationException], "DryRunOperationException", 412, nil},
		{"EnableKey with an alias", func() error {
			_, err := c.EnableKey(bg, &kms.EnableKeyInput{KeyId: aws.String("alias/app")})
			return err
		}, isA[types.NotFoundException], "NotFoundException", 400, nil},
		{"DisableKey not allowed", func() error {
			_, err := c.DisableKey(bg, &kms.DisableKeyInput{KeyId: aws.String(idEncOnly)})
			return err
		}, nil, "AccessDeniedException", 400, []string{"kms:DisableKey"}},
		{"deletion window 6 days", func() error {
			_, err := c.ScheduleKeyDeletion(bg, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(idApp), PendingWindowInDays: aws.Int32(6)})
			return err
		}, nil, "ValidationException", 400, nil},
		{"deletion already scheduled", func() error {
			_, err := c.ScheduleKeyDeletion(bg, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(idScheduled)})
			return err
		}, isA[types.KMSInvalidStateException], "KMSInvalidStateException", 400, nil},
		{"alias exists", func() error {
			_, err := c.CreateAlias(bg, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(idMRK)})
			return err
		}, isA[types.AlreadyExistsException], "AlreadyExistsException", 400, nil},
		{"reserved alias name", func() error {
			_, err := c.CreateAlias(bg, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/s3"), TargetKeyId: aws.String(idApp)})
			return err
		}, isA[types.InvalidAliasNameException], "InvalidAliasNameException", 400, nil},
		{"alias name without prefix", func() error {
			_, err := c.CreateAlias(bg, &kms.CreateAliasInput{AliasName: aws.String("app2"), TargetKeyId: aws.String(idApp)})
			return err
		}, isA[types.InvalidAliasNameException], "InvalidAliasNameException", 400, nil},
		{"alias to a key pending deletion", func() error {
			_, err := c.CreateAlias(bg, &kms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: aws.String(idScheduled)})
			return err
		}, isA[types.KMSInvalidStateException], "KMSInvalidStateException", 400, nil},
		{"bad marker", func() error {
			_, err := c.ListKeys(bg, &kms.ListKeysInput{Marker: aws.String("%%%")})
			return err
		}, isA[types.InvalidMarkerException], "InvalidMarkerException", 400, nil},
		{"limit 0", func() error {
			_, err := c.ListAliases(bg, &kms.ListAliasesInput{Limit: aws.Int32(0)})
			return err
		}, nil, "ValidationException", 400, nil},
		{"too many grant tokens", func() error {
			_, err := c.Encrypt(bg, &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: []byte("p"), GrantTokens: make([]string, 11)})
			return err
		}, nil, "ValidationException", 400, nil},
		{"asymmetric CreateKey", func() error {
			_, err := c.CreateKey(bg, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
			return err
		}, isA[types.UnsupportedOperationException], "UnsupportedOperationException", 400, nil},
		{"operation not implemented", func() error {
			_, err := c.GenerateRandom(bg, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
			return err
		}, isA[types.UnsupportedOperationException], "UnsupportedOperationException", 400, []string{"GenerateRandom"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("no error")
			}
			if got := errCode(err); got != tc.code {
				t.Fatalf("error code %q, want %q (%v)", got, tc.code, err)
			}
			if tc.typed != nil && !tc.typed(err) {
				t.Fatalf("errors.As does not find the SDK's %s type in %T: %v", tc.code, err, err)
			}
			if got := httpStatus(err); got != tc.status {
				t.Fatalf("HTTP status %d, want %d", got, tc.status)
			}
			for _, s := range tc.msg {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}
