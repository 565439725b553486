package executor

import (
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/encjob/encjob/planner"
)

// A goroutine in a blocking system call keeps its P (the runtime's right
// to run Go code) until sysmon takes it back, which a busy process's
// sysmon, backed off to its 10 ms period, does late. A local
// destination's group commit spends most of its time in syncfs and
// fsync, so on a 2-core machine one of the two Ps sat idle in them:
// bench exec, 4 KiB 0x0578 files at concurrency 4, used 1.45 of 2 cores
// (1,500-1,700 files/s) and 1.75 with one P more (2,150-2,250 files/s).
// While a plan with local outputs runs, Apply therefore allows one P
// beyond the cores' share; the blocked thread uses no CPU. An explicit
// GOMAXPROCS in the environment is left alone.
var extraP struct {
	mu   sync.Mutex
	runs int // Applies holding the extra P
	prev int // GOMAXPROCS before the first of them
}

// holdExtraP raises GOMAXPROCS by one for the run if the plan commits
// local files; the returned function undoes it (the last run to end
// restores the value found, unless someone else changed it meanwhile).
func holdExtraP(p *planner.Plan) func() {
	if os.Getenv("GOMAXPROCS") != "" || !writesLocal(p) {
		return func() {}
	}
	extraP.mu.Lock()
	defer extraP.mu.Unlock()
	if extraP.runs == 0 {
		extraP.prev = runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(extraP.prev + 1)
	}
	extraP.runs++
	return func() {
		extraP.mu.Lock()
		defer extraP.mu.Unlock()
		extraP.runs--
		if extraP.runs == 0 && runtime.GOMAXPROCS(0) == extraP.prev+1 {
			runtime.GOMAXPROCS(extraP.prev)
		}
	}
}

// writesLocal reports whether a changing item of the plan has a local
// output root (the group committer's syncs are what block).
func writesLocal(p *planner.Plan) bool {
	for _, it := range p.Items {
		root := it.OutRoot
		if it.Action.Changes() && root != "" && root != "-" && !strings.HasPrefix(root, "s3://") {
			return true
		}
	}
	return false
}
