package crypto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"sync"
	"testing"

	"github.com/encjob/encjob/crypto"
)

// TestPooledBuffersDoNotAlias: encryptors and decryptors share pooled
// buffers from one message to the next (bufpool.go). Many messages of
// every size class at once, on several goroutines, with encryptions
// aborted midway, decryptions of damaged messages and decryptors dropped
// before the end mixed in, must each still round-trip exactly: a buffer
// given back while still in use would show here as wrong plaintext.
func TestPooledBuffersDoNotAlias(t *testing.T) {
	cmm := testCMM(t)
	ctx := context.Background()
	sizes := []int{0, 1, 4095, 4096, 4097, 9000, 70000, 300000}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				if err := poolRound(ctx, cmm, g, i, sizes[(g+i)%len(sizes)]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func poolRound(ctx context.Context, cmm crypto.MaterialsManager, g, i, n int) error {
	id := []uint16{0x0478, 0x0578, 0x0178}[(g+i)%3]
	o := crypto.EncryptOptions{CMM: cmm, Suite: crypto.SuiteByID(id), Concurrency: 1 + i%2,
		CommitmentPolicy: policyFor(crypto.SuiteByID(id))}
	pt := make([]byte, n)
	rand.Read(pt)
	if i%7 == 3 { // an aborted encryption gives its buffers back too
		e, err := crypto.NewEncryptor(ctx, io.Discard, o)
		if err != nil {
			return err
		}
		e.Write(pt)
		e.Abort()
	}
	var ct bytes.Buffer
	e, err := crypto.NewEncryptor(ctx, &ct, o)
	if err != nil {
		return err
	}
	if i%2 == 0 {
		_, err = e.ReadFrom(bytes.NewReader(pt))
	} else {
		_, err = e.Write(pt)
	}
	if err != nil {
		return err
	}
	if err := e.Close(); err != nil {
		return err
	}
	do := crypto.DecryptOptions{CMM: cmm, Concurrency: 1 + i%2, CommitmentPolicy: o.CommitmentPolicy}
	switch i % 5 {
	case 1: // a damaged message fails and gives its buffers back
		bad := bytes.Clone(ct.Bytes())
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(len(bad))))
		bad[j.Int64()] ^= 1
		if d, err := crypto.NewDecryptor(ctx, bytes.NewReader(bad), do); err == nil {
			if _, err := io.Copy(io.Discard, d); err == nil {
				return fmt.Errorf("goroutine %d message %d: a damaged message decrypted", g, i)
			}
		}
	case 2: // a decryptor dropped midway keeps its buffers
		if d, err := crypto.NewDecryptor(ctx, bytes.NewReader(ct.Bytes()), do); err == nil {
			d.Read(make([]byte, 10))
		}
	}
	d, err := crypto.NewDecryptor(ctx, bytes.NewReader(ct.Bytes()), do)
	if err != nil {
		return err
	}
	var got []byte
	if i%3 == 0 {
		got, err = io.ReadAll(struct{ io.Reader }{d}) // Read, not WriteTo
	} else {
		var b bytes.Buffer
		_, err = d.WriteTo(&b)
		got = b.Bytes()
	}
	if err != nil {
		return fmt.Errorf("goroutine %d message %d (%d bytes): %v", g, i, n, err)
	}
	if !bytes.Equal(got, pt) {
		return fmt.Errorf("goroutine %d message %d (%d bytes, suite %04X): plaintext differs", g, i, n, id)
	}
	return nil
}
