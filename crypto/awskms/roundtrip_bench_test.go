package awskms_test

import (
	"context"
	"syscall"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// BenchmarkKMSRoundTrip is a KMS re-encryption's calls (OnDecrypt of the
// old data key, OnEncrypt generating the new one) through the default SDK
// client against kmsemu on loopback. cpu-us/op is the process CPU time per
// round trip (client, transport and emulator): on a shared machine the
// figure to compare, not ns/op.
func BenchmarkKMSRoundTrip(b *testing.B) {
	srv := kmsemutest.Start(b, seedYAML)
	ctx := context.Background()
	kr, err := awskms.New(ctx, awskms.Config{Keys: []string{eastARN}, Endpoint: srv.URL, Region: "us-east-1", Credentials: kmsemutest.Credentials})
	if err != nil {
		b.Fatal(err)
	}
	suite := crypto.SuiteByID(0x0578)
	ec := crypto.EncryptionContext{"tenant": "acme"}
	first := &crypto.EncryptionMaterials{Suite: suite, Context: ec}
	if err := kr.OnEncrypt(ctx, first); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(32) // 64 goroutines on 2 cores: a concurrency-64 row
	c0 := cpuNow()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			dm := &crypto.DecryptionMaterials{Suite: suite, Context: ec}
			if err := kr.OnDecrypt(ctx, dm, first.EncryptedDataKeys); err != nil {
				b.Fatal(err)
			}
			if err := kr.OnEncrypt(ctx, &crypto.EncryptionMaterials{Suite: suite, Context: ec}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(cpuNow()-c0)/1e3/float64(b.N), "cpu-us/op")
}

func cpuNow() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
