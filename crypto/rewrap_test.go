package crypto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"testing/iotest"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
)

func aesKeyring(t testing.TB, name string) crypto.Keyring {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	kr, err := keyring.NewRawAES("encjob-test", name, key)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// bodyOf returns the body bytes of a well-formed message (between the
// header and the footer), found by walking the frames independently of the
// code under test.
func bodyOf(t testing.TB, msg []byte) []byte {
	t.Helper()
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	b := msg[h.Len():]
	off := 0
	if h.ContentType == crypto.ContentNonFramed {
		off = 12 + 8 + int(binary.BigEndian.Uint64(b[12:20])) + 16
	} else {
		for {
			if binary.BigEndian.Uint32(b[off:]) != 0xFFFFFFFF {
				off += 4 + 12 + int(h.FrameLength) + 16
				continue
			}
			n := int(binary.BigEndian.Uint32(b[off+8+12:]))
			off += 8 + 12 + 4 + n + 16
			break
		}
	}
	footer := len(b) - off
	if h.Suite.Signed() {
		if footer < 2 || int(binary.BigEndian.Uint16(b[off:]))+2 != footer {
			t.Fatalf("footer of %d bytes does not hold one signature", footer)
		}
	} else if footer != 0 {
		t.Fatalf("%d bytes after an unsigned body", footer)
	}
	return b[:off]
}

// TestRewrapSweep: every suite, framed (frame lengths 1, 17, 4096) and
// non-framed, sizes around frame boundaries. The rewrapped message keeps
// the message id, suite, frame length, commitment and every body byte;
// decrypts under the new key group to the same plaintext; no longer under
// the old one; carries the edited context; and v1 headers get a fresh IV.
func TestRewrapSweep(t *testing.T) {
	ctx := context.Background()
	oldKR, newKR := aesKeyring(t, "old"), aesKeyring(t, "new")
	oldCMM, newCMM := crypto.NewDefaultCMM(oldKR), crypto.NewDefaultCMM(newKR)
	for _, s := range crypto.Suites() {
		for _, fl := range []int{0, 1, 17, 4096} {
			sizes := []int{0, 1, fl - 1, fl, fl + 1, 3*fl + 5}
			switch fl {
			case 0:
				sizes = []int{0, 1, 5000}
			case 1:
				sizes = []int{0, 1, 2, 40}
			}
			for _, n := range sizes {
				if n < 0 || (n == 0 && fl > 1 && fl != 4096) {
					continue
				}
				t.Run(fmt.Sprintf("%s/f%d/n%d", s.Hex(), fl, n), func(t *testing.T) {
					pol := policyFor(s)
					pt := make([]byte, n)
					rand.Read(pt)
					old, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: oldCMM, Suite: s, FrameLength: fl, NonFramed: fl == 0,
						Context: crypto.EncryptionContext{"tenant": "acme", "legacy": "1"}, CommitmentPolicy: pol})
					if err != nil {
						t.Fatal(err)
					}
					var out bytes.Buffer
					digest := sha256.New()
					nh, oh, err := crypto.Rewrap(ctx, &out, iotest.HalfReader(bytes.NewReader(old)), crypto.RewrapOptions{AllowHeaderNonceReuse: true,
						Decrypt: crypto.DecryptOptions{CMM: oldCMM, CommitmentPolicy: pol}, Keyring: newKR, CommitmentPolicy: pol,
						Context: func(h *crypto.Header) (crypto.EncryptionContext, error) {
							return crypto.EncryptionContext{"tenant": h.Context["tenant"], "rotated": "yes"}, nil
						},
						PlaintextHash: digest})
					if err != nil {
						t.Fatal(err)
					}
					if want := sha256.Sum256(pt); !bytes.Equal(digest.Sum(nil), want[:]) {
						t.Fatal("plaintext digest differs")
					}
					msg := out.Bytes()
					if !bytes.Equal(bodyOf(t, msg), bodyOf(t, old)) {
						t.Fatal("body bytes differ from the source's")
					}
					got, h, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: newCMM, CommitmentPolicy: pol})
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, pt) {
						t.Fatal("plaintext differs")
					}
					if _, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: oldCMM, CommitmentPolicy: pol}); !errors.Is(err, crypto.ErrNoMatchingKey) {
						t.Fatalf("the old key group still decrypts (or fails oddly): %v", err)
					}
					if !bytes.Equal(h.MessageID, oh.MessageID) || h.Suite != oh.Suite || h.FrameLength != oh.FrameLength ||
						h.ContentType != oh.ContentType || !bytes.Equal(h.CommitKey, oh.CommitKey) || h.Len() != nh.Len() {
						t.Fatal("message id, suite, layout or commitment changed")
					}
					if h.Context["rotated"] != "yes" || h.Context["tenant"] != "acme" || h.Context["legacy"] != "" {
						t.Fatalf("context %v", h.Context)
					}
					if s.Signed() && h.Context["aws-crypto-public-key"] == oh.Context["aws-crypto-public-key"] {
						t.Fatal("the signing key was not replaced")
					}
					if s.MessageVersion == 1 && (bytes.Equal(h.AuthIV, oh.AuthIV) || bytes.Equal(h.AuthIV[:8], make([]byte, 8))) {
						t.Fatalf("v1 header IV %x not fresh (old %x)", h.AuthIV, oh.AuthIV)
					}
				})
			}
		}
	}
}

// TestRewrapRefusesBadSources: a source that does not verify (signature,
// header, body tags when opened, truncation, trailing bytes) fails with a
// typed error; so does a policy that forbids writing the kept suite.
func TestRewrapRefusesBadSources(t *testing.T) {
	ctx := context.Background()
	oldKR, newKR := aesKeyring(t, "old"), aesKeyring(t, "new")
	oldCMM := crypto.NewDefaultCMM(oldKR)
	for _, id := range []uint16{0x0578, 0x0478, 0x0378, 0x0178, 0x0014} {
		s := crypto.SuiteByID(id)
		pol := policyFor(s)
		old, err := crypto.Encrypt(ctx, bytes.Repeat([]byte("attack at dawn "), 20), crypto.EncryptOptions{CMM: oldCMM, Suite: s,
			FrameLength: 64, Context: crypto.EncryptionContext{"a": "b"}, CommitmentPolicy: pol})
		if err != nil {
			t.Fatal(err)
		}
		rewrap := func(msg []byte, verifyBody bool) error {
			o := crypto.RewrapOptions{AllowHeaderNonceReuse: true, Decrypt: crypto.DecryptOptions{CMM: oldCMM, CommitmentPolicy: pol}, Keyring: newKR, CommitmentPolicy: pol}
			if verifyBody {
				o.PlaintextHash = sha256.New()
			}
			_, _, err := crypto.Rewrap(ctx, &bytes.Buffer{}, bytes.NewReader(msg), o)
			return err
		}
		if err := rewrap(old, false); err != nil {
			t.Fatalf("%s: %v", s.Hex(), err)
		}
		for i := range old {
			bad := bytes.Clone(old)
			bad[i] ^= 0x10
			err := rewrap(bad, true)
			if err == nil {
				t.Fatalf("%s: flipping byte %d went unnoticed", s.Hex(), i)
			}
			if !errors.Is(err, crypto.ErrAuthentication) && !errors.Is(err, crypto.ErrMalformed) && !errors.Is(err, crypto.ErrNoMatchingKey) {
				t.Fatalf("%s byte %d: untyped error %v", s.Hex(), i, err)
			}
			// Without opening the frames, a signed message's tampered
			// body is caught by the old signature.
			hl := len(old) - len(bodyOf(t, old))
			if s.Signed() && i >= hl {
				if err := rewrap(bad, false); err == nil {
					t.Fatalf("%s: body byte %d flipped and the signature did not catch it", s.Hex(), i)
				}
			}
		}
		for n := 0; n < len(old); n++ {
			if err := rewrap(old[:n], false); err == nil {
				t.Fatalf("%s: truncation to %d bytes went unnoticed", s.Hex(), n)
			}
		}
		if err := rewrap(append(bytes.Clone(old), 0), false); !errors.Is(err, crypto.ErrMalformed) {
			t.Fatalf("%s: trailing byte: %v", s.Hex(), err)
		}
		other := crypto.RequireEncryptAllowDecrypt
		if s.Committing {
			other = crypto.ForbidEncryptAllowDecrypt
		}
		_, _, err = crypto.Rewrap(ctx, &bytes.Buffer{}, bytes.NewReader(old), crypto.RewrapOptions{AllowHeaderNonceReuse: true,
			Decrypt: crypto.DecryptOptions{CMM: oldCMM, CommitmentPolicy: other}, Keyring: newKR, CommitmentPolicy: other})
		if !errors.Is(err, crypto.ErrPolicy) {
			t.Fatalf("%s: rewrap into a suite the policy forbids: %v", s.Hex(), err)
		}
	}
}

// replacingKeyring wraps a data key of its own instead of the one given.
type replacingKeyring struct{ crypto.Keyring }

func (r replacingKeyring) OnEncrypt(ctx context.Context, m *crypto.EncryptionMaterials) error {
	m.DataKey = make([]byte, len(m.DataKey))
	return r.Keyring.OnEncrypt(ctx, m)
}

// TestRewrapKeyGroups: a key group with a generator and children (whose
// OnEncrypt refuses an existing data key) gets every member's EDK; a
// keyring that swaps the data key is refused.
func TestRewrapKeyGroups(t *testing.T) {
	ctx := context.Background()
	oldKR := aesKeyring(t, "old")
	a, b, c := aesKeyring(t, "a"), aesKeyring(t, "b"), aesKeyring(t, "c")
	group, err := keyring.NewMulti(a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	old, err := crypto.Encrypt(ctx, []byte("hello"), crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(oldKR)})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	nh, _, err := crypto.Rewrap(ctx, &out, bytes.NewReader(old), crypto.RewrapOptions{AllowHeaderNonceReuse: true,
		Decrypt: crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(oldKR)}, Keyring: group})
	if err != nil {
		t.Fatal(err)
	}
	if len(nh.EncryptedDataKeys) != 3 {
		t.Fatalf("%d EDKs, want one per member", len(nh.EncryptedDataKeys))
	}
	for _, kr := range []crypto.Keyring{a, b, c} {
		if got, _, err := crypto.Decrypt(ctx, out.Bytes(), crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr)}); err != nil || string(got) != "hello" {
			t.Fatalf("member cannot decrypt: %v", err)
		}
	}
	_, _, err = crypto.Rewrap(ctx, &bytes.Buffer{}, bytes.NewReader(old), crypto.RewrapOptions{AllowHeaderNonceReuse: true,
		Decrypt: crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(oldKR)}, Keyring: replacingKeyring{a}})
	if err == nil {
		t.Fatal("a keyring that replaced the data key was accepted")
	}
	_, _, err = crypto.Rewrap(ctx, &bytes.Buffer{}, bytes.NewReader(old), crypto.RewrapOptions{AllowHeaderNonceReuse: true,
		Decrypt: crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(oldKR)}, Keyring: a,
		Context: func(*crypto.Header) (crypto.EncryptionContext, error) {
			return crypto.EncryptionContext{"aws-crypto-public-key": "x"}, nil
		}})
	if err == nil {
		t.Fatal("a reserved context key was accepted")
	}
}

// FuzzRewrap: arbitrary input never panics, and a rewrap preserves
// decryptability exactly: when it succeeds, the new message decrypts under
// the new key iff the source decrypts under the old one, to the same
// plaintext, and never under the old key; a signed source it accepted
// always decrypts (its old signature verified).
func FuzzRewrap(f *testing.F) {
	ctx := context.Background()
	oldKR, newKR := aesKeyring(f, "old"), aesKeyring(f, "new")
	oldCMM, newCMM := crypto.NewDefaultCMM(oldKR), crypto.NewDefaultCMM(newKR)
	for _, id := range []uint16{0x0578, 0x0478, 0x0378, 0x0178, 0x0014} {
		s := crypto.SuiteByID(id)
		for _, fl := range []int{0, 5} {
			ct, err := crypto.Encrypt(ctx, []byte("seed plaintext, a few frames long"), crypto.EncryptOptions{CMM: oldCMM, Suite: s,
				FrameLength: fl, NonFramed: fl == 0, Context: crypto.EncryptionContext{"a": "b"}, CommitmentPolicy: policyFor(s)})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(ct)
		}
	}
	dec := func(cmm crypto.MaterialsManager, msg []byte) ([]byte, error) {
		pt, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: cmm, CommitmentPolicy: crypto.RequireEncryptAllowDecrypt, MaxBodyLength: 1 << 20})
		return pt, err
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pol := crypto.RequireEncryptAllowDecrypt
		h, err := crypto.ParseHeader(bytes.NewReader(b))
		if err == nil && !h.Suite.Committing {
			pol = crypto.ForbidEncryptAllowDecrypt
		}
		var out bytes.Buffer
		_, _, err = crypto.Rewrap(ctx, &out, bytes.NewReader(b), crypto.RewrapOptions{AllowHeaderNonceReuse: true,
			Decrypt: crypto.DecryptOptions{CMM: oldCMM, CommitmentPolicy: crypto.RequireEncryptAllowDecrypt, MaxBodyLength: 1 << 20},
			Keyring: newKR, CommitmentPolicy: pol})
		if err != nil {
			return
		}
		oldPT, oldErr := dec(oldCMM, b)
		newPT, newErr := dec(newCMM, out.Bytes())
		if (oldErr == nil) != (newErr == nil) || !bytes.Equal(oldPT, newPT) {
			t.Fatalf("rewrap changed decryptability: source %v, rewrapped %v", oldErr, newErr)
		}
		if h.Suite.Signed() && oldErr != nil {
			t.Fatalf("rewrapped a signed source that does not verify: %v", oldErr)
		}
		if _, err := dec(oldCMM, out.Bytes()); err == nil {
			t.Fatal("the old key decrypts the rewrapped message")
		}
	})
}

// TestBodyTail: for unsigned messages of every layout (non-framed, frame
// lengths 1, 17, 4096, sizes around frame boundaries), the bytes BodyTail
// names pass its check on the message as written, and a body one byte
// short or one byte long fails, in BodyTail or in the check.
func TestBodyTail(t *testing.T) {
	ctx := context.Background()
	kr := aesKeyring(t, "k")
	cmm := crypto.NewDefaultCMM(kr)
	for _, id := range []uint16{0x0478, 0x0178, 0x0014} {
		s := crypto.SuiteByID(id)
		for _, fl := range []int{0, 1, 17, 4096} {
			for _, n := range []int{0, 1, 16, 17, 18, 4095, 4096, 4097, 9000} {
				msg, err := crypto.Encrypt(ctx, make([]byte, n), crypto.EncryptOptions{CMM: cmm, Suite: s, FrameLength: fl, NonFramed: fl == 0, CommitmentPolicy: policyFor(s)})
				if err != nil {
					t.Fatal(err)
				}
				h, err := crypto.ParseHeader(bytes.NewReader(msg))
				if err != nil {
					t.Fatal(err)
				}
				body := msg[h.Len():]
				verdict := func(b []byte) error {
					off, k, check, err := crypto.BodyTail(h, int64(len(b)))
					if err != nil {
						return err
					}
					if off+int64(k) > int64(len(b)) {
						return errors.New("tail beyond the body")
					}
					return check(b[off : off+int64(k)])
				}
				if err := verdict(body); err != nil {
					t.Fatalf("%s f%d n%d: whole body refused: %v", s.Hex(), fl, n, err)
				}
				if err := verdict(body[:len(body)-1]); err == nil {
					t.Fatalf("%s f%d n%d: a body one byte short passes", s.Hex(), fl, n)
				}
				if err := verdict(append(bytes.Clone(body), 0)); err == nil {
					t.Fatalf("%s f%d n%d: a body with a byte after its end passes", s.Hex(), fl, n)
				}
			}
		}
	}
}
