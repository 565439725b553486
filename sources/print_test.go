package sources

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAppendPrintIsLocalFingerprint: the allocation-free fingerprint a
// pinned read compares is byte for byte the one LocalFingerprint formats
// from an os.Lstat (what the planner records), for files with large and
// negative times and sizes up to 2^40.
func TestAppendPrintIsLocalFingerprint(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ts := range []unix.Timespec{{Sec: 0, Nsec: 0}, {Sec: 1, Nsec: 999999999}, {Sec: -86400, Nsec: 5}, {Sec: 1<<33 + 7, Nsec: 123}} {
		for _, size := range []int64{0, 1, 4096, 1 << 40} {
			if err := os.Truncate(p, size); err != nil {
				t.Skipf("truncate to %d: %v", size, err)
			}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, 0); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				t.Fatal(err)
			}
			fs := statOf(&st)
			want := LocalFingerprint(fi) // formatted from an os.FileInfo
			var b [printBufLen]byte
			if got := string(fs.appendPrint(b[:0])); got != string(want) {
				t.Errorf("mtime %v size %d: appendPrint %q, LocalFingerprint %q", ts, size, got, want)
			}
			if !fs.hasPrint(want) || fs.hasPrint(want+"0") {
				t.Errorf("mtime %v size %d: hasPrint does not match exactly %q", ts, size, want)
			}
			if got := LocalFingerprint(statInfo{name: "f", st: fs}); got != want {
				t.Errorf("mtime %v size %d: LocalFingerprint(statInfo) %q, want %q", ts, size, got, want)
			}
		}
	}
}
