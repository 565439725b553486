package planner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/keygroup"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// facts is everything the per-item decision depends on: the job's
// operation and output mode, what the source header showed and what the
// destination holds. gatherFacts reads them (headers, provenance, a
// destination Stat - never a KMS call); decide turns them into the
// action, without any I/O.
type facts struct {
	op        Action
	inPlace   bool
	blobs     bool   // KMS ciphertext blobs (no ESDK header)
	stdout    bool   // the output is standard output
	overwrite string // spec.Overwrite* (separate destinations)
	// replaced: in place, the provenance record says this very operation
	// wrote the file now at the key (decrypt, KMS blobs).
	replaced bool
	// The source header: read (hdr), or why it could not be (hdrErr).
	hdr    bool
	hdrErr error
	// satisfied: the source header already is the target (in place).
	satisfied bool
	// missingContext: the header lacks a required context key or pair.
	missingContext bool
	// notHeld: why the decrypt key group holds none of the message's
	// data keys ("" when it holds one).
	notHeld string
	note    string // the target's note (a suite that could not be kept)
	group   string // the encrypt key group (for reasons)
	dest    destFacts
}

// destFacts is the state of a separate destination at the item's key.
type destFacts struct {
	openErr error  // the destination could not be opened
	statErr error  // Stat failed (other than not found)
	exists  bool   // an output exists at the key
	notFile string // ... and is not a regular file: what it is (never replaced)
	current bool   // ... and is the one this job would write now
	why     string // why it is or is not current ("destination exists and <why>")
}

// decide is the per-item decision: a pure function of the facts.
func decide(f facts) (Action, string) {
	op := f.op
	if f.inPlace && (op == Decrypt || f.blobs) && f.replaced {
		// The file is this operation's own output (plaintext, or a blob):
		// nothing in it can show that, and processing it again would do
		// the work twice.
		return Unchanged, fmt.Sprintf("completed by an earlier run (%s in place)", op)
	}
	if f.hdrErr != nil && op != Encrypt {
		return Error, "not a readable ESDK message: " + f.hdrErr.Error()
	}
	var reason string
	if op == Reencrypt {
		reason = f.note
		if f.inPlace && f.satisfied {
			// Already migrated: the source key group no longer matters.
			return Unchanged, fmt.Sprintf("already under key group %q with the desired context and suite", f.group)
		}
	}
	if f.hdr && op != Encrypt {
		if f.missingContext {
			return Skip, "Missing encryption context key or value"
		}
		if f.notHeld != "" {
			return Error, f.notHeld
		}
	}
	switch {
	case f.inPlace && op == Encrypt && f.hdr && f.satisfied:
		return Unchanged, "already encrypted as desired"
	case f.inPlace && op == Encrypt && f.hdr:
		return Skip, "already an ESDK message (use operation reencrypt)"
	case f.inPlace || f.stdout:
		return op, reason
	}
	d := f.dest
	switch {
	case d.openErr != nil:
		return Error, d.openErr.Error()
	case d.statErr != nil:
		return Error, "destination: " + d.statErr.Error()
	case !d.exists:
		return op, reason
	case d.notFile != "":
		return Conflict, "destination is a " + d.notFile + ", not a regular file: encjob commits outputs by rename, which would replace it, so it never writes there"
	case f.overwrite == spec.OverwriteAlways:
		return op, joinReason(reason, "replaces the existing destination (overwrite: always)")
	case d.current:
		return Unchanged, d.why
	case f.overwrite == spec.OverwriteIfNewer:
		return op, joinReason(reason, "replaces the existing destination: "+d.why+" (overwrite: if-newer)")
	}
	return Conflict, "destination exists and " + d.why + " (overwrite: never)"
}

// joinReason adds why to a reason (which may already hold a note, such
// as the suite a re-encryption changes to).
func joinReason(reason, why string) string {
	if reason == "" {
		return why
	}
	return reason + "; " + why
}

// decideItem plans one listed item: what the listing says, the facts,
// the decision, and how apply processes it.
func (rt *Runtime) decideItem(ctx context.Context, srcIdx int, si sources.Item, completed map[string]sources.Fingerprint) Item {
	it := Item{SourceIndex: srcIdx, Key: si.Key, Size: si.Size, Fingerprint: si.Print, Mode: uint32(si.Mode),
		ContentType: si.ContentType, Metadata: si.Metadata, Rule: -1}
	it.Input = displayInput(rt.Locations[srcIdx], si)
	switch {
	case si.Err != nil:
		it.Action, it.Reason = Error, si.Err.Error()
		return it
	case si.Skipped != "":
		it.Action, it.Reason = Skip, si.Skipped
		return it
	}
	it.Output, it.OutRoot, it.OutKey = rt.outputFor(srcIdx, si)
	rt.applySettings(&it)
	f, hdr := rt.gatherFacts(ctx, &it, completed)
	it.Action, it.Reason = decide(f)
	if it.Action == Skip && f.missingContext {
		it.MissingContextKeys, it.MissingContextPairs = missingContext(rt.MessageContext(hdr), rt.Job.Decrypt.RequireContext)
	}
	if it.Action.Changes() {
		it.Target = rt.TargetFor(hdr)
	}
	return it
}

// applySettings sets how apply processes the item, from the job: the
// same function plans an item and checks a saved plan's (VerifyPlan).
func (rt *Runtime) applySettings(it *Item) {
	job := rt.Job
	src := job.Sources[it.SourceIndex]
	it.Format, it.InputEncoding, it.OutputEncoding = "", src.Encoding, job.Output.Encoding
	if src.Format == "kms" {
		it.Format = "kms"
	}
	it.InPlace = job.Output.InPlace
	it.Overwrite = !job.Output.InPlace && (job.Output.Overwrite == spec.OverwriteAlways || job.Output.Overwrite == spec.OverwriteIfNewer)
	it.Verify = job.Output.Verify && job.Operation != spec.OpDecrypt
	it.HeaderInPlace = job.Output.InPlace && job.Rewrap() && job.Reencrypt.HeaderInPlace
	it.DecryptKeyGroup = ""
	if job.Operation != spec.OpEncrypt {
		it.DecryptKeyGroup = job.Decrypt.KeyGroup
	}
}

// gatherFacts reads what decide needs, and only that: the header unless
// an encryption to a separate destination, the provenance record of an
// in-place decrypt or blob first (it may settle the item), the
// destination of a separate output last. It returns the source header
// (nil when not read).
func (rt *Runtime) gatherFacts(ctx context.Context, it *Item, completed map[string]sources.Fingerprint) (facts, *crypto.Header) {
	job := rt.Job
	f := facts{op: Action(job.Operation), inPlace: job.Output.InPlace, blobs: rt.KMSBlobs(it.SourceIndex),
		stdout: it.OutRoot == "-", overwrite: job.Output.Overwrite, group: job.Encrypt.KeyGroup}
	if f.inPlace && (f.op == Decrypt || f.blobs) {
		if f.replaced = rt.replacedBy(ctx, it, f.op); f.replaced {
			return f, nil
		}
	}
	stdin := rt.Locations[it.SourceIndex].Kind == sources.Stdio
	var hdr *crypto.Header
	if !stdin && !f.blobs && (f.op != Encrypt || f.inPlace) {
		err := retryTransient(ctx, func() (err error) {
			hdr, err = readHeader(ctx, rt.Sources[it.SourceIndex], it.Key, it.InputEncoding, job.MaxEncryptedDataKeys)
			return err
		})
		if err != nil {
			hdr, f.hdrErr = nil, err
			if f.op != Encrypt {
				return f, nil
			}
		} else {
			f.hdr = true
			it.Suite = hdr.Suite.Hex()
			for _, e := range hdr.EncryptedDataKeys {
				it.KeyIDs = append(it.KeyIDs, keygroup.EDKLabel(e))
			}
		}
	}
	tgt := rt.TargetFor(hdr)
	if tgt != nil {
		f.note = tgt.Note
		f.satisfied = rt.satisfies(hdr, tgt)
		if f.satisfied && rt.RenewDataKey != nil && rt.Job.Reencrypt.RequiresFull() && rt.RenewDataKey(hdr) {
			f.satisfied = false
			f.note = joinReason(f.note, "its recorded write was a rewrap (the data key kept) and reencrypt.require is full")
		}
	}
	if hdr != nil && f.op != Encrypt {
		keys, pairs := missingContext(rt.MessageContext(hdr), job.Decrypt.RequireContext)
		f.missingContext = len(keys)+len(pairs) > 0
		if g := rt.Groups[job.Decrypt.KeyGroup]; !g.HoldsAny(hdr.EncryptedDataKeys) {
			f.notHeld = fmt.Sprintf("no encrypted data key of key group %q (message keys: %s)", g.Name, crypto.BoundedList(it.KeyIDs, ", "))
		}
	}
	if !f.inPlace && !f.stdout {
		f.dest = rt.destFacts(ctx, it, hdr, tgt, completed)
	}
	return f, hdr
}

// destFacts reads the state of a separate destination at the item's key.
// An existing output counts as current only when its provenance proves
// it was written from the source's current version - timestamps prove
// nothing: cp -p, rsync -t, tar x and touch -r all make an old file look
// new or a new one look old.
func (rt *Runtime) destFacts(ctx context.Context, it *Item, srcHdr *crypto.Header, tgt *Target, completed map[string]sources.Fingerprint) destFacts {
	dst, err := rt.Destination(ctx, it)
	if err != nil {
		return destFacts{openErr: err}
	}
	var out sources.Item
	if exists, known := listedOutput(ctx, it, dst); known && !exists {
		return destFacts{} // the build's listing has no such output
	} else if !known {
		err = retryTransient(ctx, func() (err error) {
			out, err = dst.Stat(ctx, it.OutKey)
			return err
		})
	}
	switch {
	case errors.Is(err, sources.ErrNotFound):
		return destFacts{}
	case err != nil:
		return destFacts{statErr: err}
	case out.Skipped != "":
		return destFacts{exists: true, notFile: strings.TrimSuffix(out.Skipped, " not followed")}
	case rt.Job.Output.Overwrite == spec.OverwriteAlways:
		return destFacts{exists: true} // replaced whatever it is
	}
	current, why := rt.outputCurrent(ctx, dst, it, tgt, completed)
	return destFacts{exists: true, current: current, why: why}
}

// replacedBy reports whether the file now at the item's key is one that
// an in-place op of encjob wrote there (and nothing replaced since).
func (rt *Runtime) replacedBy(ctx context.Context, it *Item, op Action) bool {
	dst, err := rt.Destination(ctx, it)
	if err != nil {
		return false
	}
	prov, ok, err := provenance(ctx, dst, it.OutKey)
	return err == nil && ok && strings.HasPrefix(string(prov), inPlacePrefix(op))
}

// outputCurrent reports whether the existing output of it was written by
// encjob from the source's current version, as the job now asks; if not,
// why, in words that follow "destination exists and".
func (rt *Runtime) outputCurrent(ctx context.Context, dst sources.Destination, it *Item, tgt *Target, completed map[string]sources.Fingerprint) (bool, string) {
	if it.Fingerprint == "" {
		return false, "the source has no fingerprint to compare with"
	}
	prov, ok, err := provenance(ctx, dst, it.OutKey)
	switch {
	case err != nil:
		return false, "its provenance cannot be read: " + err.Error()
	case !ok:
		if _, can := dst.(sources.ProvenanceReader); !can && completed[it.Input] == it.Fingerprint {
			// A destination without provenance records: the metadata
			// log's word is the best there is.
			return true, "completed by an earlier run (metadata log)"
		}
		return false, "encjob has no record of writing it (it was written or replaced by something else)"
	case !samePrint(prov, it.Fingerprint):
		return false, "it was written from another version of the source"
	case Action(rt.Job.Operation) == Decrypt:
		return true, "completed by an earlier run"
	}
	// Written from this very source version; but the job may ask for
	// another key group, context, suite or frame length since.
	dh, err := rt.readBackHeader(ctx, it)
	if err != nil {
		return false, "its header cannot be read: " + err.Error()
	}
	if !rt.satisfies(dh, tgt) {
		return false, "it was written from the current source, but not with the key group (for a raw AES key or a raw RSA private key: the key in the key file now), context, suite or frame length the job now asks for"
	}
	return true, "completed by an earlier run"
}

// SourcePrint is the provenance an output is created with
// (sources.CreateOptions.SourcePrint), and what the planner later
// compares with to call an item unchanged:
//   - a separate destination records the fingerprint of the source
//     version it was made from; the output is current exactly when that
//     equals the source's fingerprint now;
//   - an in-place replacement destroys that version, so it records the
//     operation too, "inplace:<op>:<replaced print>": a later run learns
//     from it that the file is, say, plaintext an earlier decrypt wrote,
//     which no header can show.
func SourcePrint(it *Item) sources.Fingerprint {
	if it.InPlace {
		return sources.Fingerprint(inPlacePrefix(it.Action) + string(it.Fingerprint))
	}
	return it.Fingerprint
}

func inPlacePrefix(op Action) string { return "inplace:" + string(op) + ":" }

// samePrint reports whether a recorded source fingerprint names the same
// version as the current one. S3 objects are compared by ETag, and by
// version ID only when both prints carry one: a listing (ListObjectsV2)
// reports no version ID while a HEAD does, and the same object must not
// look changed because one run planned from a listing and another from
// HEADs (encjob partition).
func samePrint(recorded, current sources.Fingerprint) bool {
	if recorded == current {
		return true
	}
	re, rv, ok1 := splitS3Print(recorded)
	ce, cv, ok2 := splitS3Print(current)
	return ok1 && ok2 && re == ce && re != "" && (rv == "" || cv == "" || rv == cv)
}

// splitS3Print splits "s3:<etag>[:v=<version>]".
func splitS3Print(p sources.Fingerprint) (etag, version string, ok bool) {
	s, ok := strings.CutPrefix(string(p), "s3:")
	if !ok {
		return "", "", false
	}
	if i := strings.LastIndex(s, ":v="); i >= 0 {
		return s[:i], s[i+3:], true
	}
	return s, "", true
}

// provenance asks a destination which source version the output at key
// was written from; ok only while the output is still the very file (or
// object) encjob wrote. A destination that cannot tell proves nothing.
func provenance(ctx context.Context, dst sources.Destination, key string) (fp sources.Fingerprint, ok bool, err error) {
	pr, can := dst.(sources.ProvenanceReader)
	if !can {
		return "", false, nil
	}
	err = retryTransient(ctx, func() (err error) {
		fp, ok, err = pr.Provenance(ctx, key)
		return err
	})
	return fp, ok, err
}
