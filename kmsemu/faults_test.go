package kmsemu_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/encjob/encjob/kmsemu"
)

func TestInjectedThrottling(t *testing.T) {
	v := newEnv(t)
	v.emu.SetFaults(kmsemu.Faults{ThrottleRate: 1})
	_, err := v.client(east).Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: []byte("p")})
	if errCode(err) != "ThrottlingException" || httpStatus(err) != 400 {
		t.Fatalf("with throttle rate 1: %v", err)
	}
	if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != aws.TrueTernary {
		t.Fatalf("the SDK's retryer does not classify %v as throttling", err)
	}
	if got := v.emu.CallCount("Encrypt"); got != 1 {
		t.Fatalf("throttled call counted %d times", got)
	}
}

func TestInjectedServerErrors(t *testing.T) {
	v := newEnv(t)
	v.emu.SetFaults(kmsemu.Faults{ErrorRate: 1})
	c := v.client(east)
	seen := map[int]bool{}
	for i := 0; i < 40 && len(seen) < 2; i++ {
		_, err := c.GenerateDataKey(ctx(t), &kms.GenerateDataKeyInput{KeyId: aws.String(idApp), KeySpec: types.DataKeySpecAes256})
		status := httpStatus(err)
		switch {
		case status == 500 && isA[types.KMSInternalException](err):
		case status == 503 && errCode(err) == "ServiceUnavailableException":
		default:
			t.Fatalf("with error rate 1: status %d, %v", status, err)
		}
		if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) != aws.TrueTernary {
			t.Fatalf("the SDK's retryer does not retry %v", err)
		}
		seen[status] = true
	}
	if len(seen) != 2 {
		t.Fatalf("40 injected errors were all %v; want both 500 and 503", seen)
	}
}

// noBackoff retries at once: the test proves completion, not timing.
type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

func TestThrottlingWithRetriesCompletes(t *testing.T) {
	v := newEnv(t)
	v.emu.SetFaults(kmsemu.Faults{ThrottleRate: 0.3, ErrorRate: 0.05})
	c := v.client(east, func(o *kms.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 20
			so.Backoff = noBackoff{}
			so.RateLimiter = ratelimit.None // no retry quota: the run cannot exhaust it by chance
		})
	})
	const n = 100
	for i := range n {
		pt := []byte(fmt.Sprint("item ", i))
		enc, err := c.Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String(idApp), Plaintext: pt})
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		dec, err := c.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		if err != nil || !bytes.Equal(dec.Plaintext, pt) {
			t.Fatalf("item %d: decrypt: %v", i, err)
		}
	}
	// Every attempt is counted, so throttled attempts show up as extra calls.
	if enc := v.emu.CallCount("Encrypt"); enc <= n {
		t.Fatalf("%d Encrypt calls for %d items: no throttling observed", enc, n)
	}
}

func TestLatency(t *testing.T) {
	v := newEnv(t)
	v.emu.SetFaults(kmsemu.Faults{Latency: 30 * time.Millisecond, Jitter: 10 * time.Millisecond})
	start := time.Now()
	must[*kms.DescribeKeyOutput](t)(v.client(east).DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(idApp)}))
	// A lower bound only: the emulator must have waited at least Latency.
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("request took %v with 30ms injected latency", d)
	}
}

func TestCountersAndAdmin(t *testing.T) {
	v := newEnv(t)
	c := v.client(east)
	for range 3 {
		must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx(t), &kms.GenerateDataKeyInput{KeyId: aws.String(idApp), KeySpec: types.DataKeySpecAes256}))
	}
	must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(idApp)}))
	_, err := c.Encrypt(ctx(t), &kms.EncryptInput{KeyId: aws.String(idDisabled), Plaintext: []byte("p")}) // failed calls count too
	if !isA[types.DisabledException](err) {
		t.Fatal(err)
	}
	want := map[string]int64{"GenerateDataKey": 3, "DescribeKey": 1, "Encrypt": 1}
	check := func(got map[string]int64, want map[string]int64) {
		t.Helper()
		for _, op := range kmsemu.Operations() {
			if got[op] != want[op] {
				t.Fatalf("calls %v, want %v", got, want)
			}
		}
	}
	check(v.emu.Calls(), want)
	if v.emu.CallCount("GenerateDataKey") != 3 || v.emu.CallCount("Nope") != 0 {
		t.Fatal("CallCount disagrees with Calls")
	}

	// The admin endpoint reports the same and is not subject to faults.
	v.emu.SetFaults(kmsemu.Faults{ThrottleRate: 1, ErrorRate: 1})
	var calls map[string]int64
	adminJSON(t, http.MethodGet, v.srv.URL+"/_emu/calls", "", 200, &calls)
	check(calls, want)
	if len(calls) != len(kmsemu.Operations()) {
		t.Fatalf("/_emu/calls lists %d operations, want all %d", len(calls), len(kmsemu.Operations()))
	}

	var f map[string]any
	adminJSON(t, http.MethodPost, v.srv.URL+"/_emu/faults", `{"latency":"1ms","throttleRate":0.25}`, 200, &f)
	if got := v.emu.CurrentFaults(); got != (kmsemu.Faults{Latency: time.Millisecond, ThrottleRate: 0.25}) {
		t.Fatalf("faults after POST: %+v", got)
	}
	adminJSON(t, http.MethodGet, v.srv.URL+"/_emu/faults", "", 200, &f)
	if f["latency"] != "1ms" || f["throttleRate"] != 0.25 || f["errorRate"] != 0.0 {
		t.Fatalf("GET /_emu/faults = %v", f)
	}
	for _, bad := range []string{`{"throttleRate":2}`, `{"latency":"soon"}`, `{"latency":"-1s"}`, `{"unknown":1}`, `[`} {
		adminJSON(t, http.MethodPost, v.srv.URL+"/_emu/faults", bad, 400, nil)
	}
	adminJSON(t, http.MethodGet, v.srv.URL+"/_emu/nope", "", 404, nil)
	adminJSON(t, http.MethodGet, v.srv.URL+"/_emu/reset", "", 405, nil)

	var keys []kmsemu.KeyInfo
	adminJSON(t, http.MethodGet, v.srv.URL+"/_emu/keys", "", 200, &keys)
	if len(keys) != len(v.emu.Keys()) || len(keys) != 9 {
		t.Fatalf("/_emu/keys lists %d keys, want 9", len(keys))
	}

	adminJSON(t, http.MethodPost, v.srv.URL+"/_emu/reset", "", 204, nil)
	check(v.emu.Calls(), nil)
	v.emu.SetFaults(kmsemu.Faults{})
	must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String(idApp)}))
	v.emu.ResetCalls()
	check(v.emu.Calls(), nil)
}

func adminJSON(t *testing.T, method, url, body string, wantStatus int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s %s: status %d, want %d", method, url, body, resp.StatusCode, wantStatus)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
}

func TestSetFaultsPanicsOnInvalid(t *testing.T) {
	v := newEnv(t)
	defer func() {
		if recover() == nil {
			t.Fatal("SetFaults accepted a throttle rate of 1.5")
		}
	}()
	v.emu.SetFaults(kmsemu.Faults{ThrottleRate: 1.5})
}

// TestConcurrentWorkers runs 64 workers against one emulator (run with
// -race) and checks every result and the exact counters.
func TestConcurrentWorkers(t *testing.T) {
	v := newEnv(t)
	v.emu.SetFaults(kmsemu.Faults{Jitter: time.Millisecond})
	const workers, each = 64, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			c := v.client([]string{east, west}[w%2])
			ec := map[string]string{"worker": fmt.Sprint(w)}
			for i := range each {
				gdk, err := c.GenerateDataKey(ctx(t), &kms.GenerateDataKeyInput{KeyId: aws.String("alias/global"), NumberOfBytes: aws.Int32(32), EncryptionContext: ec})
				if err != nil {
					errs <- fmt.Errorf("worker %d item %d: %w", w, i, err)
					return
				}
				dec, err := c.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob, EncryptionContext: ec})
				if err != nil || !bytes.Equal(dec.Plaintext, gdk.Plaintext) {
					errs <- fmt.Errorf("worker %d item %d: decrypt: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if g, d := v.emu.CallCount("GenerateDataKey"), v.emu.CallCount("Decrypt"); g != workers*each || d != workers*each {
		t.Fatalf("counters GenerateDataKey %d Decrypt %d, want %d each", g, d, workers*each)
	}
}
