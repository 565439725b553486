package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// Scale is the size of the data set, chosen by prepare and read back by
// every other command.
type Scale struct {
	Factor     float64 `json:"factor"`
	LargeBytes int64   `json:"large_bytes"` // the one large file
	PeerLarge  int64   `json:"peer_large"`  // the large file the peers get (in memory for the Go ESDK)
	Small      int     `json:"small"`       // 4 KiB files
	Medium     int     `json:"medium"`      // 1 MiB files
	PeerSmall  int     `json:"peer_small"`  // how many of the small files the peers loop over
	PeerMedium int     `json:"peer_medium"` // how many of the 1 MiB files the peers loop over
	KMSc1      int     `json:"kms_c1"`      // files re-encrypted at concurrency 1
}

func readScale(dir string) (Scale, error) {
	var s Scale
	b, err := os.ReadFile(filepath.Join(dir, "scale.json"))
	if err != nil {
		return s, fmt.Errorf("reading the data set description (run prepare first): %w", err)
	}
	return s, json.Unmarshal(b, &s)
}

func cmdPrepare(args []string) error {
	fs := flag.NewFlagSet("prepare", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	factor := fs.Float64("scale", 1, "fraction of the full data set (1 = 1 GiB file, 10,000 + 1,000 files)")
	fs.Parse(args)
	f := *factor
	if f <= 0 || f > 1 {
		return fmt.Errorf("scale %v: want 0 < scale <= 1", f)
	}
	n := func(full int) int { return max(10, int(float64(full)*f)) }
	s := Scale{Factor: f, LargeBytes: max(1<<20, int64(float64(1<<30)*f)&^4095),
		Small: n(10000), Medium: n(1000)}
	s.PeerLarge = min(s.LargeBytes, 256<<20)
	s.PeerSmall, s.PeerMedium, s.KMSc1 = min(s.Small, 1000), min(s.Medium, 100), min(s.Small, 1000)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	if old, err := readScale(*dir); err == nil && old == s {
		if _, err := os.Stat(filepath.Join(*dir, "kms", "in")); err == nil {
			fmt.Fprintln(os.Stderr, "prepare: data set already present")
			return nil
		}
	}
	for _, sub := range []string{"large", "large-peer", "small", "medium", "kms", "out"} {
		os.RemoveAll(filepath.Join(*dir, sub))
	}
	key := sha256.Sum256([]byte("encjob benchmark raw AES key"))
	if err := os.WriteFile(filepath.Join(*dir, "key"), key[:], 0o600); err != nil {
		return err
	}
	seed := [32]byte{}
	copy(seed[:], "encjob benchmark data, not secret")
	if err := writeFile(filepath.Join(*dir, "large", "file"), s.LargeBytes, seed, 1); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(*dir, "large-peer", "file"), s.PeerLarge, seed, 2); err != nil {
		return err
	}
	if err := writeTree(filepath.Join(*dir, "small"), s.Small, 4096, 1000, seed); err != nil {
		return err
	}
	if err := writeTree(filepath.Join(*dir, "medium"), s.Medium, 1<<20, 100, seed); err != nil {
		return err
	}
	if err := prepareKMS(*dir); err != nil {
		return fmt.Errorf("kms inputs: %w", err)
	}
	b, _ := json.Marshal(s)
	return os.WriteFile(filepath.Join(*dir, "scale.json"), b, 0o644)
}

// writeFile writes size pseudo-random (incompressible) bytes.
func writeFile(path string, size int64, seed [32]byte, stream uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	seed[0] ^= byte(stream)
	seed[1] ^= byte(stream >> 8)
	seed[2] ^= byte(stream >> 16)
	rng := rand.NewChaCha8(seed)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		b := buf[:min(left, int64(len(buf)))]
		rng.Read(b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// writeTree writes n files of size bytes, perDir to a directory
// (dNN/fNNNNN).
func writeTree(root string, n, size, perDir int, seed [32]byte) error {
	g := new(errgroup.Group)
	g.SetLimit(runtime.GOMAXPROCS(0) * 2)
	for i := range n {
		g.Go(func() error {
			return writeFile(treePath(root, i, perDir), int64(size), seed, uint64(1000+i))
		})
	}
	return g.Wait()
}

func treePath(root string, i, perDir int) string {
	return filepath.Join(root, fmt.Sprintf("d%02d", i/perDir), fmt.Sprintf("f%05d", i))
}

var _ = context.Background
