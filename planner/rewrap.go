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
// writing that suite makes the item an error now rather than at apply.
func (rt *Runtime) rewrapAction(it *Item) {
	if !rt.Job.Rewrap() || it.Action != Reencrypt || rt.KMSBlobs(it.SourceIndex) {
		// A KMS blob has no data key to keep: KMS ReEncrypt already
		// moves it without the plaintext leaving KMS.
		return
	}
	it.Action = Rewrap
	if it.Suite == "" {
		return // KMS blobs and stdin: the executor decides
	}
	s, err := crypto.ParseSuite(it.Suite)
	if err != nil {
		it.Action, it.Reason = Error, err.Error()
		return
	}
	if err := rt.Policy.CheckEncrypt(s); err != nil {
		it.Action, it.Reason = Error, fmt.Sprintf("rewrap keeps suite %s: %v (use reencrypt.mode full to change the suite)", s.Hex(), err)
	}
}

// ReencryptContext is the user context a re-encrypted or rewrapped
// message must have: the source's, without the ESDK's own keys, edited by
// the job (the planner's idempotence check and the executor agree on it).
func (rt *Runtime) ReencryptContext(h *crypto.Header) crypto.EncryptionContext {
	return rt.reencryptContext(h)
}
