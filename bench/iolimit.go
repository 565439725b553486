package main

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/encjob/encjob/sources"
)

// copyOverlapped is the fastest copy of one large file the I/O path
// allows, what the pipelined executor's I/O can at best reach (issue 19,
// the I/O limit of the large signed rows): one goroutine reads 1 MiB
// blocks while another writes them through encjob's own local writer, as
// the executor writes an output (sources: writeback as it goes, O_DIRECT
// past the first 8 MiB, the commit's sync and link), so the durability
// and the write path are the row's, without its crypto.
func copyOverlapped(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	ctx := context.Background()
	d := sources.NewLocalDestination(filepath.Dir(dst), sources.LocalDestOptions{})
	out, err := d.Create(ctx, filepath.Base(dst), sources.CreateOptions{Size: -1})
	if err != nil {
		return 0, err
	}
	const depth, block = 4, 1 << 20
	full, free := make(chan []byte, depth), make(chan []byte, depth)
	for range depth {
		free <- make([]byte, block)
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		for b := range free {
			n, err := io.ReadFull(in, b)
			if n > 0 {
				full <- b[:n]
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = nil
				break
			}
			if err != nil {
				readErr <- err
				return
			}
		}
		readErr <- nil
	}()
	var total int64
	var werr error
	for b := range full {
		if werr == nil {
			_, werr = out.Write(b)
			total += int64(len(b))
		}
		free <- b[:cap(b)]
	}
	err = <-readErr
	if err == nil {
		err = werr
	}
	if err != nil {
		out.Abort()
		return total, err
	}
	return total, out.Commit(ctx)
}
