package main

import "fmt"

// storageBound sets the 4 KiB rows with a target beside the copy of the
// same files through encjob's storage layer (cmdStorageCopy, row
// "scopy/..."), measured right after the plain copy: what the executor's
// I/O reaches with its guarantees (pinned reads re-checked, unnamed files,
// group commit with directory fsync and journal) and no crypto. The bound
// computed with it instead of the plain copy is the most encjob can reach
// on this machine without giving up a guarantee; the gap between the two
// bounds is what the guarantees cost, the gap from encjob to the second
// one is the executor's glue and the engine's per-message cost.
func (r *report) storageBound() {
	var lines []string
	for _, suite := range []string{"0478", "0578"} {
		for _, op := range []string{"enc", "dec"} {
			base := fmt.Sprintf("small/%s/%s/c%d", suite, op, 2*r.cores)
			x, ok1 := r.get("exec/" + base)
			s, ok2 := r.get("scopy/" + base)
			if !ok1 || !ok2 {
				continue
			}
			b := r.boundFor("small", suite, base, 4096)
			if b.crypto <= 0 || b.copy <= 0 {
				continue
			}
			sb := 1 / (1/b.crypto + 1/s.filesPerSec())
			ex := x.filesPerSec()
			shm, shmRatio := "—", "—"
			if m, ok := r.get("exec-shm/" + base); ok {
				shm = num(m.filesPerSec())
				if suite == "0578" { // unsigned, the crypto is not what bounds it
					shmRatio = fmt.Sprintf("%.2f×", m.filesPerSec()/b.crypto)
				}
			}
			lines = append(lines, fmt.Sprintf("| 0x%s | %s | %d | **%s** | %s | %s | %s | %.2f× | %s | %.2f× | %.0f | %.0f | %s | %s | %s |\n",
				suite, op, 2*r.cores, num(ex), num(b.copy), num(s.filesPerSec()), num(b.bound), ex/b.bound, num(sb), ex/sb,
				x.ApplyCPUS/float64(x.Items)*1e6, s.ApplyCPUS/float64(s.Items)*1e6, shm, num(b.crypto), shmRatio))
		}
	}
	if len(lines) == 0 {
		return
	}
	r.p("\n4 KiB files, what the guarantees cost (same run): *Storage copy* copies the same files through encjob's own storage layer with no crypto " +
		"(pinned read re-checked after reading, unnamed file, group commit: syncfs, links, directory fsync, journal), at the same concurrency, right after the plain copy. " +
		"*Bound with it* = 1 / (1/Crypto + 1/Storage copy): the most encjob can reach here without giving up a guarantee; the rest of the gap to it is the executor and the engine's per-message cost. " +
		"CPU is the timed part's process CPU per file. *On tmpfs* is the same executor row with its output on tmpfs, right after: what encjob reaches without the disk's write path (page cache, writeback, the syncs), beside the Crypto rate a signed row would then be bound by.\n\n")
	r.p("| Suite | Op | Conc | encjob | Copy | Storage copy | Bound | encjob ÷ bound | Bound with it | encjob ÷ it | encjob CPU µs/file | storage copy CPU µs/file | encjob on tmpfs | Crypto | on tmpfs ÷ Crypto |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, l := range lines {
		r.p("%s", l)
	}
}
