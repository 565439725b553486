package executor

import (
	"context"
	"crypto/sha256"
	"io"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/planner"
)

// rewrap moves the message in to out under the destination key group
// without re-encrypting its body: the data key is unwrapped with the
// source key group and wrapped again, the header is rebuilt with the
// edited context, and the body is copied byte for byte (signed suites get
// a new signature after the old one verified). The caller commits out
// only on success, through the same path as a re-encryption, so
// atomicity, in-place replacement (If-Match) and resume are the same.
//
// With verify, every frame of the source is also opened and its plaintext
// digest handed to the verifier, which decrypts the new message with the
// destination key group and compares.
func rewrap(ctx context.Context, rt *planner.Runtime, out io.Writer, in io.Reader, size int64, v *verifier) (*crypto.Header, *crypto.Header, error) {
	job := rt.Job
	o := crypto.RewrapOptions{
		Decrypt:              decryptOptions(rt, size),
		Keyring:              rt.Groups[job.Encrypt.KeyGroup].Keyring,
		CommitmentPolicy:     rt.Policy,
		MaxEncryptedDataKeys: job.MaxEncryptedDataKeys,
		// The planner re-encrypts v2 items in full without the opt-in;
		// a v2 message here (stdin, an edited plan) is refused unless allowed.
		AllowHeaderNonceReuse: job.Reencrypt.AllowHeaderNonceReuse,
		Check:                 func(h *crypto.Header) error { return checkContext(job, h) },
		Context:               func(h *crypto.Header) (crypto.EncryptionContext, error) { return rt.ReencryptContext(h), nil },
	}
	if v != nil {
		o.PlaintextHash = sha256.New()
	}
	nh, oh, err := crypto.Rewrap(ctx, out, in, o)
	if err != nil {
		return nil, nil, err
	}
	if v != nil {
		v.plainDigest = o.PlaintextHash.Sum(nil)
	}
	return nh, oh, nil
}
