package sources_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/encjob/encjob/sources"
)

// BenchmarkLocalCommit creates 4 KiB files through a LocalDestination with
// 16 concurrent writers, per sync mode, and reports files/s:
//
//	go test -run '^$' -bench LocalCommit -benchtime 10000x ./sources/
func BenchmarkLocalCommit(b *testing.B) {
	data := bytes.Repeat([]byte{'x'}, 4096)
	for _, m := range []struct {
		name  string
		mode  sources.SyncMode
		batch bool
	}{{"none", sources.SyncNone, false}, {"fsync-each", sources.SyncEach, false}, {"group-syncfs", sources.SyncGroup, false}, {"group-fsyncbatch", sources.SyncGroup, true}} {
		for _, workers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/writers=%d", m.name, workers), func(b *testing.B) {
				d := sources.NewLocalDestination(b.TempDir(), sources.LocalDestOptions{Sync: m.mode})
				if m.batch {
					sources.UseFsyncBatch(d)
				}
				ctx := context.Background()
				next := make(chan int)
				var wg sync.WaitGroup
				b.ResetTimer()
				for g := 0; g < workers; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range next {
							w, err := d.Create(ctx, fmt.Sprintf("d%02d/f%06d", i%64, i), sources.CreateOptions{})
							if err == nil {
								w.Write(data)
								err = w.Commit(ctx)
							}
							if err != nil {
								b.Error(err)
							}
						}
					}()
				}
				for i := 0; i < b.N; i++ {
					next <- i
				}
				close(next)
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
			})
		}
	}
}

// BenchmarkLocalCommitAsync is one goroutine pipelining commits through
// AsyncCommitter, waiting for all results at the end.
func BenchmarkLocalCommitAsync(b *testing.B) {
	data := bytes.Repeat([]byte{'x'}, 4096)
	d := sources.NewLocalDestination(b.TempDir(), sources.LocalDestOptions{})
	ctx := context.Background()
	b.ResetTimer()
	results := make([]<-chan error, 0, b.N)
	for i := 0; i < b.N; i++ {
		w, err := d.Create(ctx, fmt.Sprintf("d%02d/f%06d", i%64, i), sources.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		w.Write(data)
		results = append(results, w.(sources.AsyncCommitter).CommitAsync(ctx))
	}
	for _, ch := range results {
		if err := <-ch; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
}
