package partition

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Lister feeds a partition its items: it calls add once per listed item
// with the index of the shard that owns it (0 ≤ part < Shards).
type Lister func(add func(part int, l Line) error) error

// Write lists through list, spools each line to its part's temporary
// file (memory: Shards × 32 KiB of buffers), uploads the parts gzip'ed
// (four at a time) and writes the manifest last. It first deletes an
// existing manifest, so that no shard reads the prefix while it is
// rewritten. hdr supplies Name, SpecDigest, Shards and Sources; the
// written manifest is returned.
func Write(ctx context.Context, st Store, hdr Manifest, list Lister) (*Manifest, error) {
	n := hdr.Shards
	if n < 1 {
		return nil, fmt.Errorf("partition: %d shards", n)
	}
	if err := st.Delete(ctx, ManifestName); err != nil {
		return nil, fmt.Errorf("removing the previous manifest: %w", err)
	}
	sp, err := newSpool(n)
	if err != nil {
		return nil, err
	}
	defer sp.close()
	if err := list(sp.add); err != nil {
		return nil, err
	}
	m := hdr
	m.FormatVersion, m.Kind = FormatVersion, Kind
	m.Created = time.Now().UTC().Truncate(time.Second)
	m.Items = 0
	m.Parts = make([]PartInfo, n)
	for i, p := range sp.parts {
		if err := p.w.Flush(); err != nil {
			return nil, fmt.Errorf("spooling part %d: %w", i, err)
		}
		m.Parts[i] = PartInfo{Name: PartName(i), Items: p.items}
		m.Items += p.items
	}
	if err := uploadParts(ctx, st, sp.parts, m.Parts); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := st.Put(ctx, ManifestName, strings.NewReader(string(b)+"\n")); err != nil {
		return nil, fmt.Errorf("writing the manifest: %w", err)
	}
	return &m, nil
}

// spool holds one temporary file per part.
type spool struct {
	dir   string
	parts []*partFile
}

type partFile struct {
	f     *os.File
	w     *bufio.Writer
	items int64
}

func newSpool(n int) (*spool, error) {
	dir, err := os.MkdirTemp("", "encjob-partition-")
	if err != nil {
		return nil, err
	}
	sp := &spool{dir: dir, parts: make([]*partFile, 0, n)}
	for i := 0; i < n; i++ {
		f, err := os.Create(filepath.Join(dir, PartName(i)))
		if err != nil {
			sp.close()
			return nil, fmt.Errorf("spooling part %d of %d: %w (raise the open-file limit, ulimit -n)", i, n, err)
		}
		sp.parts = append(sp.parts, &partFile{f: f, w: bufio.NewWriterSize(f, 32<<10)})
	}
	return sp, nil
}

func (sp *spool) add(part int, l Line) error {
	if part < 0 || part >= len(sp.parts) {
		return fmt.Errorf("partition: item %q assigned to part %d of %d", l.Key, part, len(sp.parts))
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	p := sp.parts[part]
	p.items++
	_, err = p.w.Write(append(b, '\n'))
	return err
}

func (sp *spool) close() {
	for _, p := range sp.parts {
		p.f.Close()
	}
	os.RemoveAll(sp.dir)
}

// uploadParts gzips and stores every spooled part, recording each one's
// stored size and digest in infos.
func uploadParts(ctx context.Context, st Store, parts []*partFile, infos []PartInfo) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, p := range parts {
		g.Go(func() error {
			if _, err := p.f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			pr, pw := io.Pipe()
			h := &countingHash{h: sha256.New()}
			go func() {
				zw := gzip.NewWriter(io.MultiWriter(pw, h))
				_, err := io.Copy(zw, p.f)
				if cerr := zw.Close(); err == nil {
					err = cerr
				}
				pw.CloseWithError(err)
			}()
			err := st.Put(gctx, infos[i].Name, pr)
			pr.CloseWithError(errors.New("upload ended")) // unblocks the gzip goroutine on failure
			if err != nil {
				return err
			}
			infos[i].Bytes, infos[i].SHA256 = h.n, hex.EncodeToString(h.h.Sum(nil))
			return nil
		})
	}
	return g.Wait()
}

// countingHash hashes and counts what is written to it.
type countingHash struct {
	mu sync.Mutex
	h  hash.Hash
	n  int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += int64(len(p))
	return c.h.Write(p)
}
