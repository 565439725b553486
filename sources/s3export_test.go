package sources

// SetMinCopyPart sets the smallest UploadPartCopy part (CopyRange) and
// returns a function that restores it.
func SetMinCopyPart(n int64) (restore func()) {
	old := minCopyPart
	minCopyPart = n
	return func() { minCopyPart = old }
}
