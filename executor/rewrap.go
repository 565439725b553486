package executor

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"maps"

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
func rewrap(ctx context.Context, rt *planner.Runtime, it *planner.Item, out io.Writer, in io.Reader, v *verifier) (*crypto.Header, *crypto.Header, error) {
	do, err := decryptOptions(rt, it.DecryptKeyGroup, it.Size)
	if err != nil {
		return nil, nil, err
	}
	if it.Target == nil {
		return nil, nil, errors.New("the plan item has no target")
	}
	kr, err := rt.Keyring(it.Target.KeyGroup)
	if err != nil {
		return nil, nil, err
	}
	o := crypto.RewrapOptions{
		Decrypt:              do,
		Keyring:              kr,
		CommitmentPolicy:     rt.Policy,
		MaxEncryptedDataKeys: rt.Settings.MaxEncryptedDataKeys,
		// The planner re-encrypts v2 items in full without the opt-in;
		// a v2 message here (stdin, an edited plan) is refused unless allowed.
		AllowHeaderNonceReuse: rt.Settings.AllowHeaderNonceReuse,
		Check:                 func(h *crypto.Header) error { return checkContext(rt, h) },
		Context: func(h *crypto.Header) (crypto.EncryptionContext, error) {
			t, err := reencryptTarget(rt, it, h)
			if err != nil {
				return nil, err
			}
			return crypto.EncryptionContext(maps.Clone(t.Context)), nil
		},
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
