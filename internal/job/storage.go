package job

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// StorageOptions configures a Storage.
type StorageOptions struct {
	// S3Client overrides the client built from the s3 section.
	S3Client *sources.S3Client
	Stdin    io.Reader // standard input source (default os.Stdin)
	Stdout   io.Writer // standard output destination (default os.Stdout)
	// LocalSync chooses the durability of local outputs.
	LocalSync sources.SyncMode
	// WrapDestination, when set, wraps every destination (fault
	// injection in tests, accounting).
	WrapDestination func(sources.Destination) sources.Destination
}

// Storage opens the sources and destinations of a job or policy: paths
// resolved against one base directory, one S3 client (built on first use
// from the s3 section, shared by every source and destination), one
// destination per output root. Safe for concurrent use.
type Storage struct {
	baseDir string
	s3      spec.S3Config
	o       StorageOptions

	mu    sync.Mutex
	s3c   *sources.S3Client
	dests map[string]sources.Destination
}

// NewStorage returns the storage of a spec whose relative paths are
// relative to baseDir ("" = the working directory). It opens nothing.
func NewStorage(baseDir string, s3 spec.S3Config, o StorageOptions) *Storage {
	return &Storage{baseDir: baseDir, s3: s3, o: o, s3c: o.S3Client, dests: map[string]sources.Destination{}}
}

// Resolve makes a local path of the spec relative to the base directory;
// "-", s3:// URLs and absolute paths are returned as they are.
func (s *Storage) Resolve(p string) string {
	if p == "-" || strings.HasPrefix(p, "s3://") || filepath.IsAbs(p) || s.baseDir == "" {
		return p
	}
	return filepath.Join(s.baseDir, p)
}

// S3Client returns the client of the s3 section (StorageOptions.S3Client
// when one was given), built on first use.
func (s *Storage) S3Client(ctx context.Context) (*sources.S3Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s3c != nil {
		return s.s3c, nil
	}
	c := s.s3
	cl, err := sources.NewS3Client(ctx, sources.S3Config{Region: c.Region, Profile: c.Profile, Endpoint: c.Endpoint, UsePathStyle: c.PathStyle, Timeout: c.Timeout.Duration})
	if err != nil {
		return nil, err
	}
	s.s3c = cl
	return cl, nil
}

func (s *Storage) s3Options(ctx context.Context) (sources.S3Options, error) {
	cl, err := s.S3Client(ctx)
	if err != nil {
		return sources.S3Options{}, err
	}
	return sources.S3Options{Client: cl, PartSize: int64(s.s3.PartSize), NoConditionalWrites: s.s3.NoConditionalWrites}, nil
}

// S3ObjectExists reports whether s3://bucket/key is an object; false when
// S3 cannot tell (see sources.S3ObjectExists).
func (s *Storage) S3ObjectExists(ctx context.Context, bucket, key string) bool {
	cl, err := s.S3Client(ctx)
	if err != nil {
		return false
	}
	return sources.S3ObjectExists(ctx, cl, bucket, key)
}

// OpenSource opens one source of the spec with its filters. Standard
// input ("-") is the storage's Stdin.
func (s *Storage) OpenSource(ctx context.Context, src spec.Source) (sources.Source, sources.Location, error) {
	loc, err := sources.Parse(s.Resolve(src.Path))
	if err != nil {
		return nil, loc, err
	}
	f, err := sources.NewFilter(src.Include, src.Exclude)
	if err != nil {
		return nil, loc, err
	}
	if loc.Kind == sources.Stdio {
		in := s.o.Stdin
		if in == nil {
			in = os.Stdin
		}
		return sources.NewStdinSource(in), loc, nil
	}
	so := sources.SourceOptions{Filter: f, FollowSymlinks: src.FollowSymlinks}
	// The S3 client is built when the source first needs it.
	opened, err := sources.NewSource(loc, so, func() (sources.S3Options, error) { return s.s3Options(ctx) })
	return opened, loc, err
}

// OpenSources opens every source; the error names the failing one
// (spec.sources[i]).
func (s *Storage) OpenSources(ctx context.Context, srcs []spec.Source) ([]sources.Source, []sources.Location, error) {
	var out []sources.Source
	var locs []sources.Location
	for i, src := range srcs {
		o, loc, err := s.OpenSource(ctx, src)
		if err != nil {
			return nil, nil, fmt.Errorf("spec.sources[%d]: %w", i, err)
		}
		out, locs = append(out, o), append(locs, loc)
	}
	return out, locs, nil
}

// OpenRoot opens an output root ("dir", "s3://bucket/prefix") for reading
// back what a run wrote there, unfiltered.
func (s *Storage) OpenRoot(ctx context.Context, root string) (sources.Source, error) {
	loc, err := sources.Parse(root)
	if err != nil {
		return nil, err
	}
	if loc.Kind == sources.S3 && loc.Key != "" && !strings.HasSuffix(loc.Key, "/") {
		loc.Key += "/" // the output root is a prefix
	}
	return sources.NewSource(loc, sources.SourceOptions{}, func() (sources.S3Options, error) { return s.s3Options(ctx) })
}

// Destination returns the destination of an output root: "-" (standard
// output), a local directory or s3://bucket/prefix. One destination is
// made per root and reused.
func (s *Storage) Destination(ctx context.Context, root string) (sources.Destination, error) {
	s.mu.Lock()
	d, ok := s.dests[root]
	s.mu.Unlock()
	if ok {
		return d, nil
	}
	loc, err := sources.Parse(root)
	if err != nil {
		return nil, err
	}
	switch loc.Kind {
	case sources.Stdio:
		out := s.o.Stdout
		if out == nil {
			out = os.Stdout
		}
		d = sources.NewStdoutDestination(out)
	case sources.S3:
		o, err := s.s3Options(ctx)
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(loc.Key, "/") && loc.Key != "" {
			loc.Key += "/"
		}
		if d, err = sources.NewS3Destination(loc, o); err != nil {
			return nil, err
		}
	default:
		d = sources.NewLocalDestination(loc.Path, sources.LocalDestOptions{Sync: s.o.LocalSync})
	}
	if s.o.WrapDestination != nil {
		d = s.o.WrapDestination(d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.dests[root]; ok {
		return prev, nil // another goroutine made it first: one per root
	}
	s.dests[root] = d
	return d, nil
}

// Destinations returns every destination opened so far.
func (s *Storage) Destinations() []sources.Destination {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sources.Destination, 0, len(s.dests))
	for _, d := range s.dests {
		out = append(out, d)
	}
	return out
}
