package crypto

import (
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// pipeBatchBytes is the batch a pipelined (multi-core) message moves at
// a time: large enough that the hand-offs between the goroutines cost
// nothing next to the work (a few per MiB), small enough that the
// buffers in flight stay a few MiB whatever the message size.
const pipeBatchBytes = 1 << 20

// pipeDepth is how many buffers a pipe has in flight at most: the
// producer fills one while the others wait to be written and hashed, so
// that the hash core never waits for the producer's next batch.
const pipeDepth = 4

// pipeBuf is one buffer in a pipe. refs counts the consumers (writer,
// hasher) that still need it; the last one returns it to the free list.
type pipeBuf struct {
	b    []byte
	refs atomic.Int32
}

// pipe moves a message's bytes, batch after batch and in order, to a
// destination and/or a hash, each on a goroutine of its own, so that the
// producer (reading, sealing or opening frames) runs on one core while the
// serial signature hash keeps another core to itself.
//
// Contract: the producer alone calls get, put and wait, from one
// goroutine. A buffer from get is the producer's until put; after put it
// must not be modified (the consumers read it until they release it; the
// producer may still read it until its next get, which is the only way
// the buffer comes back). Every buffer put is written to dst (when not nil) and hashed into
// h (when not nil) exactly once and in the order put. At most depth
// buffers exist, so memory is bounded whatever the message size. After
// the first write error nothing more is written or hashed and put
// returns the error. wait (exactly once) ends both goroutines and returns
// the first write error; h may be read after it. Nothing is left running
// after wait, whatever happened before.
type pipe struct {
	dst    io.Writer
	wrap   func(error) error // what a write error becomes
	h      hash.Hash
	wq, hq chan *pipeBuf
	free   chan *pipeBuf
	made   int
	failed atomic.Bool
	werr   error // set by the writer before failed; read after failed or wait
	wg     sync.WaitGroup
}

func newPipe(dst io.Writer, wrap func(error) error, h hash.Hash) *pipe {
	p := &pipe{dst: dst, wrap: wrap, h: h, free: make(chan *pipeBuf, pipeDepth)}
	if dst != nil {
		p.wq = make(chan *pipeBuf, pipeDepth)
		p.wg.Add(1)
		go p.writeLoop()
	}
	if h != nil {
		p.hq = make(chan *pipeBuf, pipeDepth)
		p.wg.Add(1)
		go p.hashLoop()
	}
	return p
}

// get returns an empty buffer with room for n bytes, waiting for one to
// come back when depth buffers are in flight.
func (p *pipe) get(n int) *pipeBuf {
	var b *pipeBuf
	select {
	case b = <-p.free:
	default:
		if p.made < pipeDepth {
			p.made++
			return &pipeBuf{b: make([]byte, 0, n)}
		}
		b = <-p.free
	}
	if cap(b.b) < n {
		b.b = make([]byte, 0, n)
	}
	b.b = b.b[:0]
	return b
}

// put hands b (its bytes b.b) to the consumers.
func (p *pipe) put(b *pipeBuf) error {
	if p.failed.Load() {
		p.free <- b
		return p.werr
	}
	var refs int32
	if p.wq != nil {
		refs++
	}
	if p.hq != nil {
		refs++
	}
	b.refs.Store(refs)
	if p.wq != nil {
		p.wq <- b // never blocks: at most depth buffers exist
	}
	if p.hq != nil {
		p.hq <- b
	}
	return nil
}

func (p *pipe) release(b *pipeBuf) {
	if b.refs.Add(-1) == 0 {
		p.free <- b
	}
}

func (p *pipe) writeLoop() {
	defer p.wg.Done()
	for b := range p.wq {
		if !p.failed.Load() {
			if _, err := p.dst.Write(b.b); err != nil {
				p.werr = p.wrap(err)
				p.failed.Store(true)
			}
		}
		p.release(b)
	}
}

func (p *pipe) hashLoop() {
	defer p.wg.Done()
	for b := range p.hq {
		if !p.failed.Load() {
			p.h.Write(b.b)
		}
		p.release(b)
	}
}

// wait lets the consumers finish what was put and stops them.
func (p *pipe) wait() error {
	if p.wq != nil {
		close(p.wq)
	}
	if p.hq != nil {
		close(p.hq)
	}
	p.wg.Wait()
	return p.werr
}
