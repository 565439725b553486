package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/encjob/encjob/internal/kmsblob"
	"github.com/encjob/encjob/planner"
)

// blobEncoding maps an item encoding to the blob encoding.
func blobEncoding(enc string) kmsblob.Encoding {
	if enc == "base64" {
		return kmsblob.Base64
	}
	return kmsblob.Binary
}

// processBlob handles one KMS ciphertext blob (format: kms): encrypt and
// decrypt are single KMS calls, and reencrypt is KMS ReEncrypt, so the
// plaintext of a re-encrypted blob never leaves KMS.
func processBlob(ctx context.Context, rt *planner.Runtime, it *planner.Item, in io.Reader, out io.Writer) error {
	// A blob's context is not readable without KMS: the required context
	// is the one KMS is asked to check, so every value must be exact.
	required := map[string]string{}
	for k, v := range rt.Settings.RequireContext {
		if v == nil {
			return fmt.Errorf("KMS blobs need exact context values: decrypt.requireContext.%s has none", k)
		}
		required[k] = *v
	}
	if it.Action != planner.Decrypt && it.Target == nil {
		return errors.New("the plan item has no target")
	}
	switch it.Action {
	case planner.Encrypt:
		return encryptBlob(ctx, rt, it, in, out)
	case planner.Decrypt:
		return decryptBlob(ctx, rt, it, required, in, out)
	case planner.Reencrypt:
		return reencryptBlob(ctx, rt, it, required, in, out)
	}
	return fmt.Errorf("action %q: not one for KMS blobs", it.Action)
}

func encryptBlob(ctx context.Context, rt *planner.Runtime, it *planner.Item, in io.Reader, out io.Writer) error {
	k, err := rt.KMSKey(ctx, it.Target.KeyGroup)
	if err != nil {
		return err
	}
	// The source's encoding applies on encrypt too (--decode).
	pt, err := io.ReadAll(io.LimitReader(planner.InputReader(in, it.InputEncoding), kmsblob.MaxPlaintext+1))
	if err != nil {
		return err
	}
	if len(pt) > kmsblob.MaxPlaintext {
		return fmt.Errorf("%w: KMS encrypts at most %d bytes; use format: esdk for larger items", kmsblob.ErrPlaintextTooLarge, kmsblob.MaxPlaintext)
	}
	blob, _, err := kmsblob.Encrypt(ctx, k.API, kmsblob.EncryptInput{KeyID: k.ARN, Plaintext: pt, Context: it.Target.Context, GrantTokens: k.GrantTokens})
	clear(pt)
	if err != nil {
		return err
	}
	return kmsblob.Write(out, blob, blobEncoding(it.OutputEncoding))
}

func decryptBlob(ctx context.Context, rt *planner.Runtime, it *planner.Item, required map[string]string, in io.Reader, out io.Writer) error {
	k, err := rt.KMSKey(ctx, it.DecryptKeyGroup)
	if err != nil {
		return err
	}
	blob, err := kmsblob.Read(in, blobEncoding(it.InputEncoding))
	if err != nil {
		return err
	}
	pt, _, err := kmsblob.Decrypt(ctx, k.API, kmsblob.DecryptInput{Blob: blob, KeyID: k.ARN, Context: required, GrantTokens: k.GrantTokens})
	if err != nil {
		return err
	}
	_, err = out.Write(pt)
	clear(pt)
	return err
}

// reencryptBlob moves a blob with KMS ReEncrypt. Its new context is the
// item's context edit applied to the required context (the only context
// of the blob encjob knows), by the same function a message's is.
func reencryptBlob(ctx context.Context, rt *planner.Runtime, it *planner.Item, required map[string]string, in io.Reader, out io.Writer) error {
	src, err := rt.KMSKey(ctx, it.DecryptKeyGroup)
	if err != nil {
		return err
	}
	dst, err := rt.KMSKey(ctx, it.Target.KeyGroup)
	if err != nil {
		return err
	}
	blob, err := kmsblob.Read(in, blobEncoding(it.InputEncoding))
	if err != nil {
		return err
	}
	tokens := append(append([]string(nil), src.GrantTokens...), dst.GrantTokens...)
	res, err := kmsblob.ReEncrypt(ctx, src.API, kmsblob.ReEncryptInput{Blob: blob, SourceKeyID: src.ARN, SourceContext: required,
		DestinationKeyID: dst.ARN, DestinationContext: it.Target.Edit.Apply(required), GrantTokens: tokens})
	if err != nil {
		return err
	}
	if !strings.EqualFold(res.KeyARN, dst.ARN) && res.KeyARN != "" {
		return fmt.Errorf("KMS re-encrypted under %s, not %s", res.KeyARN, dst.ARN)
	}
	return kmsblob.Write(out, res.Blob, blobEncoding(it.OutputEncoding))
}
