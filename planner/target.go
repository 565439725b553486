package planner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/spec"
)

// Target is what a changing encrypt, reencrypt or rewrap item writes: the
// key group, the exact user encryption context, the suite and the frame
// length of the new message. The planner computes it once per item
// (TargetFor); apply writes exactly it.
type Target struct {
	KeyGroup string `json:"key_group"`
	// Context is the user context of the new message (no aws-crypto-
	// keys). For a re-encryption it is Edit applied to the source's
	// context.
	Context map[string]string `json:"context,omitempty"`
	// Edit is how a re-encryption derives Context from its source's
	// context; nil for an encryption.
	Edit *ContextEdit `json:"context_edit,omitempty"`
	// Suite is the suite's hex id; FrameLength nil means the default (a
	// rewrap keeps both from the source).
	Suite       string `json:"suite"`
	FrameLength *int   `json:"frame_length,omitempty"`
	// RequiredKeys are the keys of Context the new message authenticates
	// without storing (a required encryption context; RequiredKeys).
	RequiredKeys []string `json:"required_context_keys,omitempty"`
	// FromSource: Context, Suite and FrameLength of a re-encryption were
	// derived from the source header the planner read. False when no
	// header could be read before apply (standard input, KMS blobs): apply
	// derives them then, with the same function.
	FromSource bool `json:"from_source,omitempty"`
	// Note is set when the source's suite could not be kept.
	Note string `json:"-"`
}

// Equal reports whether two targets write the same message.
func (t *Target) Equal(o *Target) bool {
	if t == nil || o == nil {
		return t == o
	}
	fl := func(p *int) int {
		if p == nil {
			return -1
		}
		return *p
	}
	return t.KeyGroup == o.KeyGroup && sameContext(t.Context, o.Context) && t.Edit.equal(o.Edit) &&
		t.Suite == o.Suite && fl(t.FrameLength) == fl(o.FrameLength) && t.FromSource == o.FromSource &&
		slices.Equal(t.RequiredKeys, o.RequiredKeys)
}

func sameContext(a, b map[string]string) bool { return len(a) == len(b) && maps.Equal(a, b) }

// ContextEdit is how a re-encryption edits its source's context: Remove
// these keys, then Set these pairs (reencrypt.add, then encrypt.context,
// which wins).
type ContextEdit struct {
	Remove []string          `json:"remove,omitempty"`
	Set    map[string]string `json:"set,omitempty"`
}

func (e *ContextEdit) equal(o *ContextEdit) bool {
	if e == nil || o == nil {
		return e == o
	}
	return slices.Equal(e.Remove, o.Remove) && sameContext(e.Set, o.Set)
}

// Apply returns the edited copy of a source context, without the ESDK's
// own (aws-crypto-) keys. It is the one definition of a re-encrypted
// message's context: the planner's idempotence checks, the executor's
// re-encryption and rewrap, and KMS blob ReEncrypt all use it.
func (e *ContextEdit) Apply(src map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range src {
		if !strings.HasPrefix(k, crypto.ReservedPrefix) {
			out[k] = v
		}
	}
	if e == nil {
		return out
	}
	for _, k := range e.Remove {
		delete(out, k)
	}
	maps.Copy(out, e.Set)
	return out
}

// TargetFor returns what the job writes for a source message src (nil for
// an encryption, or when no header could be read). For a re-encryption,
// what the job does not set is kept from src, because the user asked to
// change keys or context, not the format: its suite, unless the
// commitment policy forbids encrypting with it (then the policy's default,
// with a Note for the plan), and its frame length (a non-framed source is
// written framed with the default frame length: encrypting non-framed
// needs the plaintext length before the first byte, and a re-encryption
// learns it only while decrypting). A rewrap keeps suite and frame length
// whatever the job says. Nil for a decryption.
func (rt *Runtime) TargetFor(src *crypto.Header) *Target {
	job := rt.Job
	if job.Operation == spec.OpDecrypt || rt.Suite == nil {
		return nil
	}
	t := &Target{KeyGroup: job.Encrypt.KeyGroup, Suite: rt.Suite.Hex(), FrameLength: job.Encrypt.FrameLength}
	if job.Operation == spec.OpEncrypt {
		if len(job.Encrypt.Context) > 0 {
			t.Context = maps.Clone(job.Encrypt.Context)
		}
		t.RequiredKeys = rt.RequiredKeys(nil, t.Context)
		return t
	}
	set := maps.Clone(job.Reencrypt.Add)
	if set == nil && len(job.Encrypt.Context) > 0 {
		set = map[string]string{}
	}
	maps.Copy(set, job.Encrypt.Context)
	t.Edit = &ContextEdit{Remove: slices.Clone(job.Reencrypt.Remove), Set: set}
	if src == nil || src.Suite == nil {
		return t
	}
	t.FromSource = true
	// The source's context as the job knows it: stored pairs and the
	// reproduced ones its header keeps out (MessageContext).
	if c := t.Edit.Apply(rt.MessageContext(src)); len(c) > 0 {
		t.Context = c
	}
	t.RequiredKeys = rt.RequiredKeys(src, t.Context)
	if job.Rewrap() && !rt.rewrapFallsBack(src.Suite.Hex()) {
		// Kept from the source; the planner makes a suite the policy
		// forbids an error (rewrapAction).
		t.Suite, t.FrameLength = src.Suite.Hex(), nil
		if src.ContentType == crypto.ContentFramed && src.FrameLength > 0 {
			fl := int(src.FrameLength)
			t.FrameLength = &fl
		}
		return t
	}
	if job.Encrypt.Algorithm == "" {
		if rt.Policy.AllowsEncrypt(src.Suite) {
			t.Suite = src.Suite.Hex()
		} else {
			t.Note = fmt.Sprintf("suite %s of the source is not allowed for encryption under commitment policy %s: re-encrypted with %s",
				src.Suite.Hex(), rt.Policy, rt.Suite.Hex())
		}
	}
	if t.FrameLength == nil && src.ContentType == crypto.ContentFramed && src.FrameLength > 0 {
		fl := int(src.FrameLength)
		t.FrameLength = &fl
	}
	return t
}

// satisfies: the header is under the target key group, with exactly the
// target's user context (its stored pairs, and its required ones kept
// out of the header), suite and frame length.
func (rt *Runtime) satisfies(h *crypto.Header, t *Target) bool {
	if h == nil || t == nil {
		return false
	}
	g := rt.Groups[t.KeyGroup]
	// CurrentAny, not HoldsAny: a message under an older branch key
	// version than the active one is not in the desired state.
	if g == nil || !g.CurrentAny(h.EncryptedDataKeys) || h.Suite.Hex() != t.Suite {
		return false
	}
	if fl := t.FrameLength; fl != nil && int(h.FrameLength) != *fl {
		return false
	}
	if !storedMatches(h, t.Context, t.RequiredKeys) {
		return false
	}
	// The EDKs name the group's keys; for raw AES and raw RSA keys the
	// name is all they say, so the key in the key file now must also
	// open the message (a rotated or regenerated key file would
	// otherwise keep, as "unchanged", messages only the old key opens).
	full := maps.Clone(h.Context)
	for _, k := range t.RequiredKeys {
		full[k] = t.Context[k]
	}
	return g.KeysOpen(context.Background(), h.Suite, h.EncryptedDataKeys, full)
}
