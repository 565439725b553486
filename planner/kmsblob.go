package planner

// KMSBlobs reports whether a source holds KMS ciphertext blobs (format:
// kms) rather than ESDK messages.
func (rt *Runtime) KMSBlobs(srcIndex int) bool {
	return rt.Job.Sources[srcIndex].Format == "kms"
}
