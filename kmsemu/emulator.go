package kmsemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Emulator is an in-memory KMS. It implements http.Handler: serve it with
// httptest.NewServer or http.Server and point the SDK's BaseEndpoint at it.
// It is safe for concurrent use.
type Emulator struct {
	account string // the caller's account
	region  string // default region of KeyARN

	mu      sync.RWMutex
	keys    map[keyLoc]*key
	aliases map[aliasLoc]*alias

	faults atomic.Pointer[Faults]
	calls  map[string]*atomic.Int64 // fixed set of keys: read without locking
}

// operations maps X-Amz-Target operation names to their handlers.
var operations = map[string]func(*Emulator, *reqCtx, []byte) (any, *apiError){
	"CreateKey":                       (*Emulator).createKey,
	"DescribeKey":                     (*Emulator).describeKey,
	"ListKeys":                        (*Emulator).listKeys,
	"CreateAlias":                     (*Emulator).createAlias,
	"ListAliases":                     (*Emulator).listAliases,
	"Encrypt":                         (*Emulator).encrypt,
	"Decrypt":                         (*Emulator).decrypt,
	"ReEncrypt":                       (*Emulator).reEncrypt,
	"GenerateDataKey":                 (*Emulator).generateDataKey,
	"GenerateDataKeyWithoutPlaintext": (*Emulator).generateDataKeyWithoutPlaintext,
	"EnableKey":                       (*Emulator).enableKey,
	"DisableKey":                      (*Emulator).disableKey,
	"ScheduleKeyDeletion":             (*Emulator).scheduleKeyDeletion,
	"GetPublicKey":                    (*Emulator).getPublicKey,
	"DeriveSharedSecret":              (*Emulator).deriveSharedSecret,
}

// Operations returns the names of the operations the emulator implements.
func Operations() []string { return slices.Sorted(maps.Keys(operations)) }

// unimplemented are the other TrentService operations: they are answered
// with UnsupportedOperationException rather than UnknownOperationException.
var unimplemented = strings.Fields(`CancelKeyDeletion ConnectCustomKeyStore CreateCustomKeyStore
	CreateGrant Decapsulate DeleteAlias DeleteCustomKeyStore DeleteImportedKeyMaterial
	DescribeCustomKeyStores DisableKeyRotation DisconnectCustomKeyStore EnableKeyRotation Encapsulate
	GenerateDataKeyPair GenerateDataKeyPairWithoutPlaintext GenerateMac GenerateRandom GetKeyLastUsage
	GetKeyPolicy GetKeyRotationStatus GetParametersForImport ImportKeyMaterial ListGrants
	ListKeyPolicies ListKeyRotations ListResourceTags ListRetirableGrants PutKeyPolicy ReplicateKey
	RetireGrant RevokeGrant RotateKeyOnDemand Sign TagResource UntagResource UpdateAlias
	UpdateCustomKeyStore UpdateKeyDescription UpdatePrimaryRegion Verify VerifyMac`)

// New returns an emulator holding the seed's keys (nil: no keys, default
// account and region). The seed is validated as ParseSeed does and is not
// modified.
func New(seed *Seed) (*Emulator, error) {
	if seed == nil {
		seed = &Seed{}
	}
	account, region, keys, err := seed.normalize(nil)
	if err != nil {
		return nil, err
	}
	e := &Emulator{
		account: account,
		region:  region,
		keys:    map[keyLoc]*key{},
		aliases: map[aliasLoc]*alias{},
		calls:   map[string]*atomic.Int64{},
	}
	for op := range operations {
		e.calls[op] = new(atomic.Int64)
	}
	e.faults.Store(&Faults{})
	now := time.Now()
	for _, sk := range keys {
		var mat *material
		var asym *asymKey
		switch {
		case asymSpecs[sk.KeySpec] == sk.Usage: // not the SIGN_VERIFY stubs
			if asym, err = newAsymKey(sk.KeySpec); err != nil {
				return nil, fmt.Errorf("kmsemu: key %s: %w", sk.ID, err)
			}
		case sk.Usage == usageEncrypt:
			if mat, err = newMaterial(sk.material); err != nil {
				return nil, fmt.Errorf("kmsemu: key %s: %w", sk.ID, err)
			}
		}
		var mrk *mrkSet
		if strings.HasPrefix(sk.ID, "mrk-") {
			mrk = &mrkSet{primary: sk.Region, replicas: slices.Clone(sk.Replicas)}
		}
		state := stateEnabled
		if !sk.enabled {
			state = stateDisabled
		}
		for _, r := range append([]string{sk.Region}, sk.Replicas...) {
			loc := keyLoc{sk.Account, r, sk.ID}
			e.keys[loc] = &key{
				keyLoc: loc, arn: keyARN(loc), created: now,
				usage: sk.Usage, spec: sk.KeySpec, allowed: sk.allowed,
				mat: mat, asym: asym, mrk: mrk, state: state,
			}
			for _, a := range sk.Aliases {
				al := aliasLoc{sk.Account, r, a}
				e.aliases[al] = &alias{aliasLoc: al, target: sk.ID, created: now}
			}
		}
	}
	return e, nil
}

// Faults are injected into every KMS request (never into the admin
// endpoint). Each request first waits Latency plus a uniformly random extra
// delay in [0, Jitter]; then, with probability ThrottleRate, it fails with
// ThrottlingException (HTTP 400); otherwise, with probability ErrorRate, it
// fails with KMSInternalException (HTTP 500) or ServiceUnavailableException
// (HTTP 503), chosen at random. Rates are in [0, 1].
//
// In JSON (the admin endpoint) durations are strings such as "5ms":
//
//	{"latency":"5ms","jitter":"2ms","throttleRate":0.3,"errorRate":0.05}
type Faults struct {
	Latency, Jitter         time.Duration
	ThrottleRate, ErrorRate float64
}

// Validate reports a negative duration or a rate outside [0, 1].
func (f Faults) Validate() error {
	var errs []error
	if f.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency: %v is negative", f.Latency))
	}
	if f.Jitter < 0 {
		errs = append(errs, fmt.Errorf("jitter: %v is negative", f.Jitter))
	}
	if !(f.ThrottleRate >= 0 && f.ThrottleRate <= 1) {
		errs = append(errs, fmt.Errorf("throttleRate: %v is not in [0, 1]", f.ThrottleRate))
	}
	if !(f.ErrorRate >= 0 && f.ErrorRate <= 1) {
		errs = append(errs, fmt.Errorf("errorRate: %v is not in [0, 1]", f.ErrorRate))
	}
	if len(errs) > 0 {
		return fmt.Errorf("kmsemu: faults: %w", errors.Join(errs...))
	}
	return nil
}

type faultsJSON struct {
	Latency      string  `json:"latency"`
	Jitter       string  `json:"jitter"`
	ThrottleRate float64 `json:"throttleRate"`
	ErrorRate    float64 `json:"errorRate"`
}

// MarshalJSON writes durations as strings ("5ms").
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{f.Latency.String(), f.Jitter.String(), f.ThrottleRate, f.ErrorRate})
}

// UnmarshalJSON reads durations as strings ("5ms"); absent members are zero.
// Unknown members are errors.
func (f *Faults) UnmarshalJSON(data []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	var out Faults
	for _, d := range []struct {
		name string
		s    string
		dst  *time.Duration
	}{{"latency", j.Latency, &out.Latency}, {"jitter", j.Jitter, &out.Jitter}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		*d.dst = v
	}
	out.ThrottleRate, out.ErrorRate = j.ThrottleRate, j.ErrorRate
	*f = out
	return nil
}

// SetFaults replaces the injected faults; the zero Faults turns them off.
// It panics if f is invalid (see Validate).
func (e *Emulator) SetFaults(f Faults) {
	if err := f.Validate(); err != nil {
		panic(err)
	}
	e.faults.Store(&f)
}

// CurrentFaults returns the injected faults.
func (e *Emulator) CurrentFaults() Faults { return *e.faults.Load() }

// Calls returns the number of calls per implemented operation, zeros
// included. A call is counted once its request passed the signature-shape
// check and named an implemented operation, whatever its outcome (injected
// faults and errors included), as a billing or quota view would count
// attempts; SDK retries therefore count separately.
func (e *Emulator) Calls() map[string]int64 {
	m := make(map[string]int64, len(e.calls))
	for op, c := range e.calls {
		m[op] = c.Load()
	}
	return m
}

// CallCount returns the number of calls of one operation (see Calls).
func (e *Emulator) CallCount(op string) int64 {
	if c, ok := e.calls[op]; ok {
		return c.Load()
	}
	return 0
}

// ResetCalls sets every counter to zero.
func (e *Emulator) ResetCalls() {
	for _, c := range e.calls {
		c.Store(0)
	}
}

// KeyARN returns the ARN of the key that idOrAlias (key id, key ARN, alias
// name or alias ARN) names in region ("" = the seed's default region), as
// the caller's account sees it.
func (e *Emulator) KeyARN(idOrAlias, region string) (string, error) {
	if region == "" {
		region = e.region
	}
	k, aerr := e.resolve(&reqCtx{account: e.account, region: region}, idOrAlias, "keyId", true)
	if aerr != nil {
		return "", fmt.Errorf("kmsemu: key %q in %s: %s", idOrAlias, region, aerr.Message)
	}
	return k.arn, nil
}

// KeyInfo describes one regional key.
type KeyInfo struct {
	ARN     string   `json:"arn"`
	State   string   `json:"state"`
	Aliases []string `json:"aliases,omitempty"`
}

// Keys lists every regional key with its aliases, sorted by ARN.
func (e *Emulator) Keys() []KeyInfo {
	e.mu.RLock()
	defer e.mu.RUnlock()
	byLoc := map[keyLoc]*KeyInfo{}
	for loc, k := range e.keys {
		byLoc[loc] = &KeyInfo{ARN: k.arn, State: k.state}
	}
	for _, a := range e.aliases {
		if ki := byLoc[keyLoc{a.account, a.region, a.target}]; ki != nil {
			ki.Aliases = append(ki.Aliases, a.name)
		}
	}
	out := make([]KeyInfo, 0, len(byLoc))
	for _, ki := range byLoc {
		slices.Sort(ki.Aliases)
		out = append(out, *ki)
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return strings.Compare(a.ARN, b.ARN) })
	return out
}

// reqCtx is what a handler knows about the caller.
type reqCtx struct {
	account string // the caller's account
	region  string // from the SigV4 credential scope
}

const maxRequestBody = 1 << 20

// ServeHTTP serves the KMS JSON 1.1 protocol on POST / and the admin
// endpoint under /_emu/.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_emu/") {
		e.serveAdmin(w, r)
		return
	}
	out, aerr := e.serveKMS(r)
	if aerr == nil && out == nil {
		return // the client went away during injected latency
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", newKeyID())
	status := http.StatusOK
	var body any = out
	if aerr != nil {
		status, body = aerr.Status, errorBody{aerr.Type, aerr.Message}
	}
	writeJSON(w, status, body)
}

// writeJSON sends v whole, with a Content-Length, as AWS KMS does. A body
// streamed by json.Encoder goes out chunked once it passes net/http's
// 4 KiB buffer (an Encrypt of 4,096 bytes answers about 5.6 KiB), and
// aws-sdk-go-v2 then now and then fails to read it ("deserialization
// failed ... use of closed network connection"): a flaky test, and not
// what a client of the real service ever sees.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (e *Emulator) serveKMS(r *http.Request) (any, *apiError) {
	region, aerr := checkAuth(r)
	if aerr != nil {
		return nil, aerr
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "TrentService.")
	if r.Method != http.MethodPost || r.URL.Path != "/" || !ok {
		return nil, clientErr(errUnknownOperation, "unknown operation: %s %s with X-Amz-Target %q", r.Method, r.URL.Path, target)
	}
	handler, ok := operations[op]
	if !ok {
		if slices.Contains(unimplemented, op) {
			return nil, clientErr(errUnsupported, "kmsemu does not implement %s", op)
		}
		return nil, clientErr(errUnknownOperation, "unknown operation %s", op)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/x-amz-json-1.1" && mt != "application/x-amz-json-1.0") {
			return nil, clientErr(errSerialization, "unsupported Content-Type %q: want application/x-amz-json-1.1", ct)
		}
	}
	e.calls[op].Add(1)
	if aerr := e.injectFaults(r.Context()); aerr != nil {
		return nil, aerr
	} else if r.Context().Err() != nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRequestBody))
	if err != nil {
		return nil, clientErr(errSerialization, "read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	return handler(e, &reqCtx{account: e.account, region: region}, body)
}

// injectFaults sleeps for the configured latency (without holding any lock)
// and rolls the throttling and error dice.
func (e *Emulator) injectFaults(ctx context.Context) *apiError {
	f := e.faults.Load()
	d := f.Latency
	if f.Jitter > 0 {
		d += rand.N(f.Jitter + 1)
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}
	if f.ThrottleRate > 0 && rand.Float64() < f.ThrottleRate {
		return clientErr(errThrottling, "Rate exceeded (injected by kmsemu)")
	}
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
		if rand.IntN(2) == 0 {
			return newErr(errInternal, http.StatusInternalServerError, "internal failure (injected by kmsemu)")
		}
		return newErr(errUnavailable, http.StatusServiceUnavailable, "service unavailable (injected by kmsemu)")
	}
	return nil
}

// decodeInput unmarshals a request body into v.
func decodeInput(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return clientErr(errSerialization, "cannot decode request body: %v", err)
	}
	return nil
}
