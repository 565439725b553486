package sources

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ProvenTemporaries returns the absolute paths of the named temporary
// files below root that encjob's run journals prove to be encjob's: the
// temporary name of a commit record, or a file named after a run's id in a
// directory that run's journal lists. Those of a crashed run are what the
// next writing run's recovery removes; those of a live run are in flight.
// Either way they are never items, so a planner must skip them (a plan
// changes nothing, so it cannot remove them itself).
//
// It only reads (no lock, nothing created): a root without a state
// directory, or with an unreadable one, has no proven temporaries. A
// record's temporary counts only while the file there is a regular file;
// what the journal says is never taken for more than a reason to skip.
func ProvenTemporaries(root string) ([]string, error) {
	state := filepath.Join(root, StateDir)
	if fi, err := os.Lstat(filepath.Join(state, stateMarker)); err != nil || !fi.Mode().IsRegular() {
		return nil, nil
	}
	runs := filepath.Join(state, runsName)
	des, err := os.ReadDir(runs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	addFile := func(p string) {
		if seen[p] {
			return
		}
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, journalSuffix) || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil || fi.Size() > maxJournalSize {
			continue
		}
		b, err := os.ReadFile(filepath.Join(runs, name))
		if err != nil {
			continue
		}
		prefix := TempPrefix + runOf(name) + "-"
		for _, r := range parseRecords(b) {
			if CheckKey(r.key) != nil && r.key != "" {
				continue // a record never names anything outside the root
			}
			dir := filepath.Join(root, filepath.FromSlash(dirKey(r.key)))
			switch {
			case r.kind == 'P' && r.tmp != "":
				if strings.ContainsAny(r.tmp, "/\x00") || !strings.HasPrefix(r.tmp, TempPrefix) {
					continue
				}
				addFile(filepath.Join(dir, r.tmp))
			case r.kind == 'D':
				dir = filepath.Join(root, filepath.FromSlash(r.key))
				ents, err := os.ReadDir(dir)
				if err != nil {
					continue
				}
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), prefix) {
						addFile(filepath.Join(dir, e.Name()))
					}
				}
			}
		}
	}
	return out, nil
}
