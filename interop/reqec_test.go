package interop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/interop"
	"github.com/encjob/encjob/interop/goesdk"
)

// reqecContext: non-ASCII keys and values; the required keys are two of
// them, one non-ASCII.
var (
	reqecContext  = map[string]string{"tenant": "acme ÄÖÜ 東京", "ключ": "значение", "purpose": "interop", "emoji 😀": "🔐"}
	reqecRequired = []string{"tenant", "ключ"}
)

func reqecReproduced() map[string]string {
	out := map[string]string{}
	for _, k := range reqecRequired {
		out[k] = reqecContext[k]
	}
	return out
}

// TestRequiredContextGoESDK: messages made through the required
// encryption context CMM interoperate both ways with the official Go ESDK
// and the MPL's CreateRequiredEncryptionContextCMM - signed and unsigned,
// committing and not, message formats 1 and 2, several frame lengths and
// sizes around frame boundaries, raw AES and raw RSA - and the required
// pairs are in neither header; a wrong or missing reproduced value fails
// on both sides (encjob: ErrReproducedContext naming the keys).
func TestRequiredContextGoESDK(t *testing.T) {
	ctx := context.Background()
	f := keys(t)
	keySets := map[string][]interop.Key{"raw-aes": {f.aes256}, "raw-rsa": {f.rsa(t, 2048, "oaep-sha256")}}
	var n int
	for kname, ks := range keySets {
		kr, err := encjobKeyring(ks)
		if err != nil {
			t.Fatal(err)
		}
		rcmm, err := crypto.NewRequiredContextCMM(crypto.NewDefaultCMM(kr), reqecRequired)
		if err != nil {
			t.Fatal(err)
		}
		for _, suite := range []uint16{0x0578, 0x0478, 0x0378, 0x0178, 0x0014} {
			for _, fl := range []int{1, 128, 4096} {
				for _, size := range []int{0, fl - 1, fl, fl + 1, 3*fl + 7} {
					name := fmt.Sprintf("%s/%04X/frame-%d/size-%d", kname, suite, fl, size)
					pt := bytes.Repeat([]byte("reqec-"), size/6+1)[:size]
					goToEncjob(t, ctx, name, ks, rcmm, suite, fl, pt)
					encjobToGo(t, ctx, name, ks, rcmm, suite, fl, pt)
					n += 2
				}
			}
		}
	}
	t.Logf("%d messages, each decrypted by the other side with the reproduced context", n)
}

func encryptPolicy(suite uint16) crypto.CommitmentPolicy {
	if suite < 0x0400 {
		return crypto.ForbidEncryptAllowDecrypt
	}
	return crypto.RequireEncryptRequireDecrypt
}

func noRequiredStored(h *crypto.Header) error {
	for _, k := range reqecRequired {
		if _, ok := h.Context[k]; ok {
			return fmt.Errorf("the header stores required key %q", k)
		}
	}
	if h.Context["purpose"] != "interop" {
		return fmt.Errorf("the header lacks the other pairs: %v", h.Context)
	}
	return nil
}

// goToEncjob: the Go ESDK encrypts through the MPL's required-EC CMM,
// encjob decrypts with the reproduced context (through its default CMM and
// its required-EC CMM) and refuses a wrong or missing one.
func goToEncjob(t *testing.T, ctx context.Context, name string, ks []interop.Key, rcmm crypto.MaterialsManager, suite uint16, fl int, pt []byte) {
	t.Helper()
	msg, _, err := goesdk.EncryptRequired(ctx, ks, pt, goesdk.Options{Suite: suite, FrameLength: int64(fl), Context: reqecContext}, reqecRequired)
	if err != nil {
		t.Fatalf("%s: go esdk encrypt: %v", name, err)
	}
	kr, _ := encjobKeyring(ks)
	for _, cmm := range []crypto.MaterialsManager{rcmm, crypto.NewDefaultCMM(kr)} {
		got, h, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: cmm, CommitmentPolicy: crypto.RequireEncryptAllowDecrypt,
			ReproducedContext: reqecReproduced(), ForbidNetV400Retry: true})
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: encjob decrypt of a Go ESDK message: %v", name, err)
		}
		if err := noRequiredStored(h); err != nil || !maps.Equal(map[string]string(h.RequiredContext), reqecReproduced()) {
			t.Fatalf("%s: Go ESDK header: %v (authenticated-only %v)", name, err, h.RequiredContext)
		}
	}
	if len(pt) != fl+1 || fl != 128 {
		return // the negative cases once per suite and key
	}
	wrong := reqecReproduced()
	wrong["tenant"] = "evil"
	for what, c := range map[string]struct {
		cmm        crypto.MaterialsManager
		reproduced map[string]string
		names      string
	}{
		"wrong value":           {crypto.NewDefaultCMM(kr), wrong, `"tenant"`},
		"wrong value (req CMM)": {rcmm, wrong, `"tenant"`},
		"missing (req CMM)":     {rcmm, map[string]string{"tenant": reqecContext["tenant"]}, `"ключ"`},
	} {
		_, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: c.cmm, CommitmentPolicy: crypto.RequireEncryptAllowDecrypt, ReproducedContext: c.reproduced})
		if !errors.Is(err, crypto.ErrReproducedContext) || !strings.Contains(err.Error(), c.names) {
			t.Errorf("%s: %s: got %v, want ErrReproducedContext naming %s", name, what, err, c.names)
		}
	}
	if _, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr), CommitmentPolicy: crypto.RequireEncryptAllowDecrypt}); err == nil {
		t.Errorf("%s: decrypted a Go ESDK required-EC message without the reproduced context", name)
	}
}

// encjobToGo: encjob encrypts through its required-EC CMM, the Go ESDK
// decrypts with the reproduced context (through the MPL's required-EC CMM
// and through the keyring alone) and refuses a wrong or missing one.
func encjobToGo(t *testing.T, ctx context.Context, name string, ks []interop.Key, rcmm crypto.MaterialsManager, suite uint16, fl int, pt []byte) {
	t.Helper()
	msg, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: rcmm, Suite: crypto.SuiteByID(suite), FrameLength: fl,
		Context: reqecContext, CommitmentPolicy: encryptPolicy(suite)})
	if err != nil {
		t.Fatalf("%s: encjob encrypt: %v", name, err)
	}
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if err := noRequiredStored(h); err != nil {
		t.Fatalf("%s: encjob header: %v", name, err)
	}
	for _, required := range [][]string{reqecRequired, nil} {
		got, r, err := goesdk.DecryptReproduced(ctx, ks, msg, goesdk.Options{}, reqecReproduced(), required)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: Go ESDK decrypt of an encjob message (required CMM %v): %v", name, required != nil, err)
		}
		for k, v := range reqecContext {
			if r.Context[k] != v {
				t.Fatalf("%s: Go ESDK reports context %v", name, r.Context)
			}
		}
	}
	if len(pt) != fl+1 || fl != 128 {
		return
	}
	wrong := reqecReproduced()
	wrong["ключ"] = "другое"
	for what, c := range map[string]struct {
		reproduced map[string]string
		required   []string
	}{
		"wrong value":           {wrong, nil},
		"wrong value (req CMM)": {wrong, reqecRequired},
		"missing (req CMM)":     {map[string]string{"tenant": reqecContext["tenant"]}, reqecRequired},
		"none":                  {nil, nil},
	} {
		if _, _, err := goesdk.DecryptReproduced(ctx, ks, msg, goesdk.Options{}, c.reproduced, c.required); err == nil {
			t.Errorf("%s: %s: the Go ESDK decrypted an encjob required-EC message", name, what)
		}
	}
}
