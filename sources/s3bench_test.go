package sources_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/s3test"
)

// BenchmarkS3Put64KiB: the client's cost of one 64 KiB output (a little
// over, like a 64 KiB plaintext's ciphertext) through S3Destination,
// written in 16 KiB writes as the encryptor does; -benchmem shows the
// bytes allocated per output.
func BenchmarkS3Put64KiB(b *testing.B) {
	srv := s3test.Start(b)
	c, _ := srv.NewCountingClient()
	bucket := newBucket(b, srv)
	d, err := sources.NewS3Destination(s3Loc(b, "s3://"+bucket+"/"), sources.S3Options{Client: c})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 64<<10+600)
	rand.Read(data)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu0 := selfCPU()
	for i := 0; b.Loop(); i++ {
		w, err := d.Create(ctx, fmt.Sprintf("o-%d", i), sources.CreateOptions{Overwrite: sources.OverwriteNever, Size: -1})
		if err != nil {
			b.Fatal(err)
		}
		for r := bytes.NewBuffer(data); r.Len() > 0; {
			w.Write(r.Next(16 << 10))
		}
		if err := w.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	// The client's CPU per output (this process: the server is another).
	b.ReportMetric(float64((selfCPU()-cpu0).Microseconds())/float64(b.N), "client-cpu-us/op")
}

// selfCPU is this process's user + system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
