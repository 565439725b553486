package sources_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/encjob/encjob/sources"
)

// TestLargeOutputWriteback: outputs large enough to be written back while
// they are written (every 8 MiB, on a goroutine of the writer's) commit
// with exactly their content under every sync mode, an aborted one leaves
// nothing, and no writeback goroutine outlives its writer.
func TestLargeOutputWriteback(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 21<<20+5)
	rand.Read(data)
	base := runtime.NumGoroutine()
	for _, mode := range []sources.SyncMode{sources.SyncGroup, sources.SyncEach, sources.SyncNone} {
		root := t.TempDir()
		d := sources.NewLocalDestination(root, sources.LocalDestOptions{Sync: mode})
		for _, name := range []string{"kept", "aborted"} {
			w, err := d.Create(ctx, name, sources.CreateOptions{Size: -1})
			if err != nil {
				t.Fatal(err)
			}
			for p := data; len(p) > 0; p = p[min(len(p), 1<<20+7):] {
				if _, err := w.Write(p[:min(len(p), 1<<20+7)]); err != nil {
					t.Fatal(err)
				}
			}
			if name == "aborted" {
				w.Abort()
				continue
			}
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := os.ReadFile(filepath.Join(root, "kept")); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("mode %v: committed output differs (%v)", mode, err)
		}
		if _, err := os.Stat(filepath.Join(root, "aborted")); !os.IsNotExist(err) {
			t.Fatalf("mode %v: aborted output: %v", mode, err)
		}
	}
	n := runtime.NumGoroutine()
	for i := 0; i < 200 && n > base; i++ {
		time.Sleep(5 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base {
		t.Fatalf("%d goroutines left (%d before)", n, base)
	}
}
