package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/encjob/encjob/sources"
)

// cmdStorageCopy copies the row's files through encjob's own storage
// layer, with no crypto and no executor: each file read through
// LocalSource.OpenPinned and re-checked after the read (Recheck), written
// to an unnamed file by LocalDestination.Create and staged with
// CommitAsync under the default group commit (syncfs, links, directory
// fsync, journal), at the row's concurrency. Its rate is the most the
// executor's I/O can reach with every durability, atomicity and
// confinement guarantee it gives; the plain copy (cmdCopy) is the same
// files without them. bench/report.go sets the two side by side for the
// 4 KiB rows (issue 19: what the guarantees cost, measured in the run).
func cmdStorageCopy(args []string) error {
	fs := flag.NewFlagSet("storagecopy", flag.ExitOnError)
	id := fs.String("id", "", "row id")
	in := fs.String("in", "", "input directory")
	out := fs.String("out", "", "output directory (left in place: bench/run discards it)")
	conc := fs.Int("conc", 0, "goroutines (0: 2 x cores)")
	fs.Parse(args)
	if *conc == 0 {
		*conc = 2 * runtime.GOMAXPROCS(0)
	}
	ctx := context.Background()
	loc, err := sources.Parse(*in)
	if err != nil {
		return err
	}
	src, err := sources.NewLocalSource(loc, sources.SourceOptions{})
	if err != nil {
		return err
	}
	var items []sources.Item
	if err := src.List(ctx, func(it sources.Item) error {
		if it.Skipped == "" {
			items = append(items, it)
		}
		return nil
	}); err != nil {
		return err
	}
	// Like the executor row, the output root is new and made by the
	// destination itself (the lock, the state directory, each directory).
	dst := sources.NewLocalDestination(*out, sources.LocalDestOptions{})
	paths := make([]string, len(items))
	for i, it := range items {
		paths[i] = filepath.Join(*in, filepath.FromSlash(it.Key))
	}
	if err := readAll(paths); err != nil {
		return err
	}
	unix.Sync()
	t, c := time.Now(), cpu()
	var total atomic.Int64
	pending := make([]<-chan error, len(items))
	g := new(errgroup.Group)
	g.SetLimit(*conc)
	for i, it := range items {
		g.Go(func() error {
			ch, n, err := storageCopyOne(ctx, src, dst, it)
			total.Add(n)
			pending[i] = ch
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, ch := range pending {
		if err := <-ch; err != nil {
			return fmt.Errorf("%s: %w", items[i].Key, err)
		}
	}
	secs := time.Since(t).Seconds()
	emit(Row{ID: *id, Items: int64(len(items)), Bytes: total.Load(), Seconds: secs, ApplyCPUS: cpu() - c,
		Note: fmt.Sprintf("the same files through encjob's storage layer (pinned read + recheck, unnamed file, group commit), no crypto, %d goroutines", *conc)})
	return nil
}

// copyBufPool pools the copy buffers, as the executor pools its own.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// storageCopyOne copies one item as the executor stores one: pinned
// open, read, re-check, create, write, staged commit.
func storageCopyOne(ctx context.Context, src *sources.LocalSource, dst *sources.LocalDestination, it sources.Item) (<-chan error, int64, error) {
	r, err := src.OpenPinned(ctx, it.Key, it.Print)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	w, err := dst.Create(ctx, it.Key, sources.CreateOptions{Size: -1, SourcePrint: it.Print})
	if err != nil {
		return nil, 0, err
	}
	b := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(b)
	n, err := io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, *b)
	if err == nil {
		err = r.Recheck()
	}
	if err != nil {
		w.Abort()
		return nil, n, err
	}
	return w.(sources.AsyncCommitter).CommitAsync(ctx), n, nil
}
