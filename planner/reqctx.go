package planner

import (
	"slices"
	"strings"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/spec"
)

// Messages written through a required-encryption-context CMM store only
// part of their context: the rest is authenticated, not stored, and the
// job supplies it (decrypt.reproducedContext). A parsed header cannot
// prove those values - decryption does - so plan-time decisions take the
// reproduced pairs a header does not store as the message's, and apply
// fails the item when they are wrong. These two functions are the only
// places that combine the stored and the reproduced context, so skip
// (requireContext), unchanged (satisfies) and the target context of a
// re-encryption all agree.

// MessageContext is the user context of the message with header h as the
// job knows it: the stored pairs (ESDK-reserved ones dropped) and the
// authenticated-only ones - proven ones on a header decryption
// authenticated, else the reproduced pairs the header does not store.
func (rt *Runtime) MessageContext(h *crypto.Header) crypto.EncryptionContext {
	out := crypto.EncryptionContext{}
	if h == nil {
		return out
	}
	for k, v := range h.Context {
		if !strings.HasPrefix(k, crypto.ReservedPrefix) {
			out[k] = v
		}
	}
	only := h.RequiredContext
	if len(only) == 0 {
		only = rt.Job.Decrypt.ReproducedContext
	}
	for k, v := range only {
		if _, stored := h.Context[k]; !stored {
			out[k] = v
		}
	}
	return out
}

// RequiredKeys returns the keys of newCtx (the context of a message the
// job writes from source src; nil src for encrypt) that the new message
// authenticates without storing: encrypt.requiredContextKeys and, when a
// re-encryption does not reencrypt.storeRequiredContext, the source's
// pairs its header did not store. Sorted; nil when every pair is stored.
func (rt *Runtime) RequiredKeys(src *crypto.Header, newCtx crypto.EncryptionContext) []string {
	job := rt.Job
	keys := slices.Clone(job.Encrypt.RequiredContextKeys)
	if job.Operation == spec.OpReencrypt && !job.Reencrypt.StoreRequiredContext && src != nil {
		for k := range rt.MessageContext(src) {
			if _, stored := src.Context[k]; !stored && hasKey(newCtx, k) && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	return keys
}

// storedMatches: h stores exactly the pairs of want that are not
// required, and none of the required keys (whose values it cannot show).
func storedMatches(h *crypto.Header, want crypto.EncryptionContext, required []string) bool {
	n := 0
	for k, v := range h.Context {
		if strings.HasPrefix(k, crypto.ReservedPrefix) {
			continue
		}
		if w, ok := want[k]; !ok || w != v || slices.Contains(required, k) {
			return false
		}
		n++
	}
	for _, k := range required {
		if !hasKey(want, k) {
			return false
		}
	}
	return n+len(required) == len(want)
}

func hasKey(c crypto.EncryptionContext, k string) bool { _, ok := c[k]; return ok }
