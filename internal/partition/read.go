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
	"io"

	"github.com/encjob/encjob/sources"
)

// ReadManifest reads the manifest (errors.Is(err, sources.ErrNotFound)
// when the partition has not finished or never ran). Unknown fields are
// refused: a newer writer's manifest is not half-understood.
func ReadManifest(ctx context.Context, st Store) (*Manifest, error) {
	rc, err := st.Get(ctx, ManifestName)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(rc, 64<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	return &m, nil
}

// Check says why a manifest cannot be used for a job whose spec digest is
// specDigest: another format or version, another spec, or parts that do
// not match the shard count.
func (m *Manifest) Check(specDigest string) error {
	switch {
	case m.Kind != Kind || m.FormatVersion != FormatVersion:
		return fmt.Errorf("%s is %q version %d; this encjob reads %q version %d", ManifestName, m.Kind, m.FormatVersion, Kind, FormatVersion)
	case m.SpecDigest != specDigest:
		return fmt.Errorf("partitioned from another spec (spec digest %s, this spec's is %s)", Short(m.SpecDigest), Short(specDigest))
	case m.Shards < 1 || len(m.Parts) != m.Shards:
		return fmt.Errorf("%s lists %d parts for %d shards", ManifestName, len(m.Parts), m.Shards)
	}
	return nil
}

// Short abbreviates a digest for messages.
func Short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// ReadPart reads one part, checking its digest and item count against
// the manifest's record of it.
func ReadPart(ctx context.Context, st Store, p PartInfo) ([]Line, error) {
	rc, err := st.Get(ctx, p.Name)
	if err != nil {
		if errors.Is(err, sources.ErrNotFound) {
			return nil, fmt.Errorf("%s is missing", p.Name)
		}
		return nil, err
	}
	defer rc.Close()
	h := &countingHash{h: sha256.New()}
	raw := io.TeeReader(rc, h)
	zr, err := gzip.NewReader(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	var out []Line
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", p.Name, n, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	if got := hex.EncodeToString(h.h.Sum(nil)); got != p.SHA256 || h.n != p.Bytes {
		return nil, fmt.Errorf("%s does not match the manifest (sha256 %s, %d bytes; want %s, %d bytes): rewritten by another partition run?", p.Name, Short(got), h.n, Short(p.SHA256), p.Bytes)
	}
	if int64(len(out)) != p.Items {
		return nil, fmt.Errorf("%s holds %d items, the manifest says %d", p.Name, len(out), p.Items)
	}
	return out, nil
}
