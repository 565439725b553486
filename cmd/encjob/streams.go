package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// oneStream refuses a run two of whose outputs would be one open file
// under two names: the data (-o -, or the device or pipe -o names), the
// metadata log and the JSON summary (apply --json). "-" is compared with
// "-" by name, and with a path by identity, against encjob's own standard
// output: /dev/stdout, /proc/self/fd/1, a symlink to either, or the very
// file the shell redirected stdout to ("> out.bin --metadata-output
// out.bin") are stdout too. The lines of one would be mixed into the
// bytes of the other (a ciphertext with a log record appended no longer
// decrypts), so this is a usage error before anything is written. A
// terminal or /dev/null may take several.
func oneStream(e *env, dsts [][2]string) error {
	type seen struct{ flag, name string }
	ids := map[[2]uint64]seen{}
	for _, d := range dsts {
		flag, name := d[0], d[1]
		if name == "" || strings.HasPrefix(name, "s3://") {
			continue
		}
		id, ok := streamID(e, name)
		if !ok {
			continue
		}
		if s, dup := ids[id]; dup {
			return usageErrorf(flag, "%s is the same file as %s (%s): their contents would be mixed; write one of them elsewhere", describeDst(name), describeDst(s.name), s.flag)
		}
		ids[id] = seen{flag, name}
	}
	return nil
}

// streamID is the identity of a destination: the file a path names
// (symlinks followed), or encjob's standard output for "-" (a marker
// when it cannot be stat'ed, as in tests: then "-" equals "-" only).
func streamID(e *env, name string) ([2]uint64, bool) {
	var fi os.FileInfo
	var err error
	if name == "-" {
		if e.stdoutFile == nil {
			return [2]uint64{^uint64(0), ^uint64(0)}, true
		}
		fi, err = e.stdoutFile.Stat()
	} else {
		fi, err = os.Stat(name)
	}
	if err != nil || fi.Mode()&os.ModeCharDevice != 0 {
		// A terminal or /dev/null takes both without harm: what is
		// mixed there is only shown, or dropped.
		return [2]uint64{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return [2]uint64{}, false
	}
	return [2]uint64{uint64(st.Dev), uint64(st.Ino)}, true
}

func describeDst(name string) string {
	if name == "-" {
		return "stdout"
	}
	return fmt.Sprintf("%q", name)
}
