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
func (rt *Runtime) rewrapAction(it *Item) {
	if !rt.Job.Rewrap() || it.Action != Reencrypt || rt.KMSBlobs(it.SourceIndex) {
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
		note := fmt.Sprintf("re-encrypted in full: a rewrap of suite %s would reuse the message format v2 header nonce under the kept data key, "+
			"letting anyone with the old and the new copy forge messages (reencrypt.allowHeaderNonceReuse: true rewraps anyway)", s.Hex())
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
