// Command bench is the benchmark driver behind bench/run. Each subcommand
// measures one thing in its own process (so that its peak RSS is its own)
// and prints result rows as JSON lines; "report" turns the collected rows
// into the markdown table of docs/benchmarks.md.
//
//	bench prepare -dir D [-scale S]      test data, keys, KMS-encrypted inputs
//	bench limits -dir D                  stdlib AES-GCM, SHA-384, ECDSA P-384, file copy
//	bench exec -dir D -set small -suite 0578 -op encrypt -conc 4
//	bench mem  -dir D -set small -suite 0578 -op encrypt -conc 4
//	bench kms  -dir D -conc 16 [-cache]  re-encryption through the KMS emulator
//	bench s3   -dir D -mode both|encrypt|copy -conc 16 -rounds 2
//	bench copy -id ID -in D -out D -conc 4  plain copy of the same files (a row's bound)
//	bench storagecopy -id ID -in D -out D -conc 4  the same copy through encjob's storage layer (sources)
//	bench prim -id ID -what sign|verify|sha384 [-bytes N] -conc 4  crypto primitive floor
//	bench kmscalls -id ID -conc 64 [-cache]  the KMS calls of a re-encryption alone
//	bench peer -id ID -- COMMAND...      runs a peer that prints one JSON line
//	bench rewrap -dir D -where local|s3 -suite 0478  copy vs full re-encryption vs rewrap (issue 18)
//	bench report -rows FILE -machine FILE -out FILE
//
// It measures through the Go API (planner.Prepare -> planner.Build ->
// executor.Apply), not through the CLI binary.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Row is one measurement.
type Row struct {
	ID      string  `json:"id"`
	Items   int64   `json:"items,omitempty"`
	Bytes   int64   `json:"bytes,omitempty"`   // plaintext bytes processed
	Seconds float64 `json:"seconds,omitempty"` // the timed part
	// Value is the measured figure for rows that are not items/bytes over
	// time (limits): in Unit.
	Value  float64          `json:"value,omitempty"`
	Unit   string           `json:"unit,omitempty"`
	PlanS  float64          `json:"plan_s,omitempty"` // planning time, not in Seconds
	RSSKiB int64            `json:"rss_kib,omitempty"`
	Calls  map[string]int64 `json:"calls,omitempty"` // KMS calls by operation
	Note   string           `json:"note,omitempty"`
	// Load1 is the 1-minute load average when the row was emitted and
	// CPUS the CPU time (user + system) of the whole process: on a shared
	// machine, CPUS well below cores × wall time means the row was starved.
	Load1 float64 `json:"load1,omitempty"`
	CPUS  float64 `json:"cpu_s,omitempty"`
	// ServerCPUS is the CPU time of the storage server the row ran
	// against (S3 rows: versitygw shares the machine's cores).
	ServerCPUS float64 `json:"server_cpu_s,omitempty"`
	// ApplyCPUS is the process CPU time of the timed apply alone (exec
	// rows): CPUS less planning, the figure to compare per item.
	ApplyCPUS float64 `json:"apply_cpu_s,omitempty"`
	// Steal is how many of the machine's cores the hypervisor gave to
	// other guests, on average, while the row's process ran (steal time
	// in /proc/stat): on a shared VM the same row measured 1,400 and
	// 2,200 files/s minutes apart, with 0.0 and 0.8 cores stolen.
	Steal float64 `json:"steal,omitempty"`
	// Round is the row's round (BENCH_ROUND) where bench/run measures a
	// row and its bounds several times in turn; the report pairs each
	// round with the bounds measured next to it.
	Round int `json:"round,omitempty"`
}

// started and stealAtStart are when this process began and the machine's
// steal ticks then.
var started, stealAtStart = time.Now(), stealTicks()

// stealTicks is the machine's steal time so far in USER_HZ ticks (the
// eighth value of /proc/stat's cpu line), -1 if unknown.
func stealTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	n, err := strconv.ParseInt(f[8], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func (r Row) filesPerSec() float64 { return float64(r.Items) / r.Seconds }
func (r Row) mbPerSec() float64    { return float64(r.Bytes) / r.Seconds / 1e6 }

// speed orders two measurements of one row: bytes per second, or items
// per second for a row without bytes; 0 for an empty row.
func (r Row) speed() float64 {
	switch {
	case r.Seconds <= 0:
		return 0
	case r.Bytes > 0:
		return float64(r.Bytes) / r.Seconds
	}
	return float64(r.Items) / r.Seconds
}

func emit(r Row) {
	if r.RSSKiB == 0 {
		r.RSSKiB = vmhwm()
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			r.CPUS = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &r.Load1)
	}
	if now := stealTicks(); now >= 0 && stealAtStart >= 0 {
		// USER_HZ is 100 on Linux (sysconf(_SC_CLK_TCK)).
		r.Steal = float64(now-stealAtStart) / 100 / time.Since(started).Seconds()
	}
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROUND")); err == nil && r.Round == 0 {
		r.Round = n
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

// vmhwm is this process's peak resident set size in KiB.
func vmhwm() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench prepare|limits|exec|mem|kms|s3|peer|report [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"prepare": cmdPrepare, "limits": cmdLimits, "exec": cmdExec, "mem": cmdMem,
		"kms": cmdKMS, "s3": cmdS3, "copy": cmdCopy, "prim": cmdPrim, "kmscalls": cmdKMSCalls, "peer": cmdPeer, "report": cmdReport,
		"rewrap": cmdRewrap, "storagecopy": cmdStorageCopy,
	}
	f, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	// BENCH_CPUPROFILE_DIR=dir writes a CPU profile of each run to
	// dir/<command>-<pid>.pprof (for finding what dominates a row).
	if d := os.Getenv("BENCH_CPUPROFILE_DIR"); d != "" && os.Args[1] != "report" {
		pf, err := os.Create(filepath.Join(d, fmt.Sprintf("%s-%s.pprof", os.Args[1], profileName(os.Args[2:]))))
		if err == nil {
			pprof.StartCPUProfile(pf)
			defer func() { pprof.StopCPUProfile(); pf.Close() }()
		}
	}
	// BENCH_TRACE_DIR=dir writes a Go execution trace of each run to
	// dir/<command>-<pid>.trace (which goroutine waited for what:
	// go tool trace -pprof=sched|sync|syscall FILE).
	if d := os.Getenv("BENCH_TRACE_DIR"); d != "" && os.Args[1] != "report" {
		tf, err := os.Create(filepath.Join(d, fmt.Sprintf("%s-%s.trace", os.Args[1], profileName(os.Args[2:]))))
		if err == nil {
			trace.Start(tf)
			defer func() { trace.Stop(); tf.Close() }()
		}
	}
	if err := f(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: error: %v\n", os.Args[1], err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// profileName is the -id argument made into a file name.
func profileName(args []string) string {
	for i, a := range args {
		if (a == "-id" || a == "--id") && i+1 < len(args) {
			return strings.ReplaceAll(args[i+1], "/", "_")
		}
		if v, ok := strings.CutPrefix(a, "-id="); ok {
			return strings.ReplaceAll(v, "/", "_")
		}
	}
	return strconv.Itoa(os.Getpid())
}
