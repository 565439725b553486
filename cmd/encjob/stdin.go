package main

import (
	"context"
	"io"
)

// cancelReader makes a blocking reader (stdin) give up when ctx is
// cancelled: a goroutine pumps chunks, and Read returns ctx's error as soon
// as it is done, so an interrupted run does not wait for more input.
type cancelReader struct {
	ctx    context.Context
	chunks chan chunk
	start  func()
	cur    []byte
	err    error
}

type chunk struct {
	b   []byte
	err error
}

func newCancelReader(ctx context.Context, r io.Reader) *cancelReader {
	c := &cancelReader{ctx: ctx, chunks: make(chan chunk, 1)}
	started := false
	c.start = func() {
		if started {
			return
		}
		started = true
		go func() {
			for {
				b := make([]byte, 64<<10)
				n, err := r.Read(b)
				select {
				case c.chunks <- chunk{b[:n], err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	return c
}

func (c *cancelReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		c.start()
		select {
		case <-c.ctx.Done():
			c.err = c.ctx.Err()
			return 0, c.err
		case ch := <-c.chunks:
			c.cur, c.err = ch.b, ch.err
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}
