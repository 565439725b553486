package planner

import (
	"fmt"

	"github.com/encjob/encjob/crypto"
)

// rewrapAction turns a planned re-encryption into a rewrap when the job
// asks for one (reencrypt.mode: rewrap), so the plan and the metadata log
// say which of the two an item gets: a rewrapped message keeps its data
// key, an audit must be able to tell. Decided from the header the planner
// read: a rewrap keeps the suite, so a commitment policy that forbids
// writing that suite makes the item an error now rather than at apply;
// and a message format v2 item stays a full re-encryption, with a reason,
// unless the job allows the header nonce reuse its rewrap implies.
//
// With reencrypt.require rewrap nothing falls back: an item a rewrap
// cannot move is an error item that names the reason (requiredRewrap).
func (rt *Runtime) rewrapAction(it *Item) {
	if !rt.Job.Rewrap() || it.Action != Reencrypt {
		return
	}
	if why := rt.cannotRewrap(it.SourceIndex, it.Suite); why != "" && rt.Job.Reencrypt.RequiresRewrap() {
		it.Action, it.Reason = Error, requiredRewrap(why)
		return
	}
	if rt.KMSBlobs(it.SourceIndex) {
		// A KMS blob has no data key to keep: KMS ReEncrypt already
		// moves it without the plaintext leaving KMS.
		return
	}
	if it.Suite == "" {
		it.Action = Rewrap
		return // stdin: the executor decides (crypto.Rewrap refuses v2 without the opt-in)
	}
	s, err := crypto.ParseSuite(it.Suite)
	if err != nil {
		it.Action, it.Reason = Error, err.Error()
		return
	}
	if rt.rewrapFallsBack(it.Suite) {
		// Stays a full re-encryption (TargetFor keeps the suite), and
		// the plan says why.
		note := "re-encrypted in full: " + nonceReuseReason(s)
		if it.Reason != "" {
			note += "; " + it.Reason
		}
		it.Reason = note
		return
	}
	it.Action = Rewrap
	if err := rt.Policy.CheckEncrypt(s); err != nil {
		it.Action, it.Reason = Error, fmt.Sprintf("rewrap keeps suite %s: %v (use reencrypt.mode full to change the suite)", s.Hex(), err)
	}
}

// rewrapFallsBack reports whether mode rewrap re-encrypts a message of
// suite (a plan's Item.Suite) in full: message format v2 without
// reencrypt.allowHeaderNonceReuse (see crypto.RewrapReusesHeaderNonce).
func (rt *Runtime) rewrapFallsBack(suite string) bool {
	s, err := crypto.ParseSuite(suite)
	return err == nil && crypto.RewrapReusesHeaderNonce(s) && !rt.Job.Reencrypt.AllowHeaderNonceReuse
}

// nonceReuseReason says why a message format v2 item is not rewrapped
// without reencrypt.allowHeaderNonceReuse.
func nonceReuseReason(s *crypto.Suite) string {
	return fmt.Sprintf("a rewrap of suite %s would reuse the message format v2 header nonce under the kept data key, "+
		"letting anyone with the old and the new copy forge messages (reencrypt.allowHeaderNonceReuse: true rewraps anyway)", s.Hex())
}

// cannotRewrap says why an item of source srcIndex whose header showed
// suite (a plan's Item.Suite; "" unknown) would not be rewrapped by this
// job, or "" when it would (or, for stdin, when only the message itself
// can tell: crypto.Rewrap refuses v2 without the opt-in).
func (rt *Runtime) cannotRewrap(srcIndex int, suite string) string {
	if srcIndex >= 0 && srcIndex < len(rt.Job.Sources) && rt.KMSBlobs(srcIndex) {
		return "a KMS ciphertext blob (format kms) has no data key to keep: KMS ReEncrypt re-encrypts it"
	}
	if rt.rewrapFallsBack(suite) {
		s, _ := crypto.ParseSuite(suite)
		return nonceReuseReason(s)
	}
	return ""
}

// requiredRewrap is the reason of an item that reencrypt.require rewrap
// turns into an error instead of a full re-encryption.
func requiredRewrap(why string) string {
	return "cannot be rewrapped, and reencrypt.require is rewrap (no fallback to a full re-encryption): " + why +
		"; without require: rewrap it is re-encrypted in full"
}

// reencryptAction is the action this reencrypt job plans for a message
// item of source srcIndex and suite: Rewrap, Reencrypt, or Error when
// the job requires a rewrap the item cannot get.
func (rt *Runtime) reencryptAction(srcIndex int, suite string) Action {
	if !rt.Job.Rewrap() {
		return Reencrypt
	}
	if rt.cannotRewrap(srcIndex, suite) == "" {
		return Rewrap
	}
	if rt.Job.Reencrypt.RequiresRewrap() {
		return Error
	}
	return Reencrypt
}
