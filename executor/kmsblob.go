package executor

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/encjob/encjob/internal/kmsblob"
	"github.com/encjob/encjob/planner"
)

// blobEncoding maps a spec encoding to the blob encoding.
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
	job := rt.Job
	inEnc := blobEncoding(job.Sources[it.SourceIndex].Encoding)
	outEnc := blobEncoding(job.Output.Encoding)
	required := map[string]string{}
	for k, v := range job.Decrypt.RequireContext {
		if v == nil {
			return fmt.Errorf("KMS blobs need exact context values: decrypt.requireContext.%s has none", k)
		}
		required[k] = *v
	}
	switch it.Action {
	case planner.Encrypt:
		k, err := rt.KMSKey(ctx, job.Encrypt.KeyGroup)
		if err != nil {
			return err
		}
		// The source's encoding applies on encrypt too (--decode).
		pt, err := io.ReadAll(io.LimitReader(planner.InputReader(in, job.Sources[it.SourceIndex].Encoding), kmsblob.MaxPlaintext+1))
		if err != nil {
			return err
		}
		if len(pt) > kmsblob.MaxPlaintext {
			return fmt.Errorf("%w: KMS encrypts at most %d bytes; use format: esdk for larger items", kmsblob.ErrPlaintextTooLarge, kmsblob.MaxPlaintext)
		}
		blob, _, err := kmsblob.Encrypt(ctx, k.API, kmsblob.EncryptInput{KeyID: k.ARN, Plaintext: pt, Context: job.Encrypt.Context,
			GrantTokens: k.GrantTokens})
		clear(pt)
		if err != nil {
			return err
		}
		return kmsblob.Write(out, blob, outEnc)
	case planner.Decrypt:
		k, err := rt.KMSKey(ctx, job.Decrypt.KeyGroup)
		if err != nil {
			return err
		}
		blob, err := kmsblob.Read(in, inEnc)
		if err != nil {
			return err
		}
		pt, _, err := kmsblob.Decrypt(ctx, k.API, kmsblob.DecryptInput{Blob: blob, KeyID: k.ARN, Context: required,
			GrantTokens: k.GrantTokens})
		if err != nil {
			return err
		}
		_, err = out.Write(pt)
		clear(pt)
		return err
	case planner.Reencrypt:
		src, err := rt.KMSKey(ctx, job.Decrypt.KeyGroup)
		if err != nil {
			return err
		}
		dst, err := rt.KMSKey(ctx, job.Encrypt.KeyGroup)
		if err != nil {
			return err
		}
		blob, err := kmsblob.Read(in, inEnc)
		if err != nil {
			return err
		}
		dctx := map[string]string{}
		for k, v := range required {
			dctx[k] = v
		}
		for _, k := range job.Reencrypt.Remove {
			delete(dctx, k)
		}
		for k, v := range job.Reencrypt.Add {
			dctx[k] = v
		}
		tokens := append(append([]string(nil), src.GrantTokens...), dst.GrantTokens...)
		res, err := kmsblob.ReEncrypt(ctx, src.API, kmsblob.ReEncryptInput{Blob: blob, SourceKeyID: src.ARN, SourceContext: required,
			DestinationKeyID: dst.ARN, DestinationContext: dctx, GrantTokens: tokens})
		if err != nil {
			return err
		}
		if !strings.EqualFold(res.KeyARN, dst.ARN) && res.KeyARN != "" {
			return fmt.Errorf("KMS re-encrypted under %s, not %s", res.KeyARN, dst.ARN)
		}
		return kmsblob.Write(out, res.Blob, outEnc)
	}
	return fmt.Errorf("executor: action %q changes nothing", it.Action)
}
