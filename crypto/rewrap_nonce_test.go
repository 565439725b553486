package crypto

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"testing"
)

// toyKeyring wraps data keys by XOR with a pad derived from its name:
// enough for tests inside package crypto (which cannot import the real
// keyrings).
type toyKeyring struct{ name string }

func (k toyKeyring) pad() []byte { p := sha256.Sum256([]byte(k.name)); return p[:] }

func (k toyKeyring) OnEncrypt(_ context.Context, m *EncryptionMaterials) error {
	if m.DataKey == nil {
		m.DataKey = make([]byte, m.Suite.KeyLen)
		rand.Read(m.DataKey)
	}
	ct := bytes.Clone(m.DataKey)
	for i := range ct {
		ct[i] ^= k.pad()[i]
	}
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, EncryptedDataKey{ProviderID: "toy", ProviderInfo: []byte(k.name), Ciphertext: ct})
	return nil
}

func (k toyKeyring) OnDecrypt(_ context.Context, m *DecryptionMaterials, edks []EncryptedDataKey) error {
	for _, e := range edks {
		if e.ProviderID == "toy" && string(e.ProviderInfo) == k.name && m.DataKey == nil {
			m.DataKey = bytes.Clone(e.Ciphertext)
			for i := range m.DataKey {
				m.DataKey[i] ^= k.pad()[i]
			}
			return nil
		}
	}
	return ErrNoMatchingKey
}

// gfMul multiplies two GCM field elements (NIST SP 800-38D, 6.3).
func gfMul(x, y [16]byte) [16]byte {
	var z [16]byte
	v := y
	for i := 0; i < 128; i++ {
		if x[i/8]&(0x80>>(i%8)) != 0 {
			for j := range z {
				z[j] ^= v[j]
			}
		}
		lsb := v[15] & 1
		for j := 15; j > 0; j-- {
			v[j] = v[j]>>1 | v[j-1]<<7
		}
		v[0] >>= 1
		if lsb != 0 {
			v[0] ^= 0xE1
		}
	}
	return z
}

// ghashAAD is GHASH_H over additional data a and no ciphertext.
func ghashAAD(h [16]byte, a []byte) [16]byte {
	var y [16]byte
	blocks := append(bytes.Clone(a), make([]byte, (16-len(a)%16)%16)...)
	blocks = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(blocks, uint64(len(a))*8), 0)
	for off := 0; off < len(blocks); off += 16 {
		for j := 0; j < 16; j++ {
			y[j] ^= blocks[off+j]
		}
		y = gfMul(y, h)
	}
	return y
}

func xor16(a, b []byte) (r [16]byte) {
	for i := range r {
		r[i] = a[i] ^ b[i]
	}
	return r
}

// TestRewrapV2HeaderNonceReuseForges shows why Rewrap refuses message
// format v2 unless told otherwise, for the signed suite too: the old and
// the new header tag are AES-GCM tags under one key and one (zero) nonce,
// so T_old ^ T_new = GHASH_H(A_old) ^ GHASH_H(A_new), a polynomial in H
// whose roots an attacker with both copies finds (degree: the number of
// header blocks). The test takes H from the key instead of factoring -
// after asserting that H is such a root, which is the nonce reuse itself -
// and then forges, from the two public messages alone plus H, a message
// with a context of its choosing (and, for 0x0578, its own signing key)
// that the NEW key group decrypts and accepts. For v1 suites (fresh
// header IV) H is not a root: the masks differ.
func TestRewrapV2HeaderNonceReuseForges(t *testing.T) {
	ctx := context.Background()
	oldKR, newKR := toyKeyring{"old"}, toyKeyring{"new"}
	for _, id := range []uint16{0x0478, 0x0578, 0x0178, 0x0378} {
		s := SuiteByID(id)
		pol := RequireEncryptRequireDecrypt
		if !s.Committing {
			pol = ForbidEncryptAllowDecrypt
		}
		pt := bytes.Repeat([]byte("wire 100 EUR to alice. "), 10)
		old, err := Encrypt(ctx, pt, EncryptOptions{CMM: NewDefaultCMM(oldKR), Suite: s, FrameLength: 64,
			Context: EncryptionContext{"tenant": "acme"}, CommitmentPolicy: pol})
		if err != nil {
			t.Fatal(err)
		}
		o := RewrapOptions{Decrypt: DecryptOptions{CMM: NewDefaultCMM(oldKR), CommitmentPolicy: pol}, Keyring: newKR, CommitmentPolicy: pol}
		var refused bytes.Buffer
		_, _, err = Rewrap(ctx, &refused, bytes.NewReader(old), o)
		if s.MessageVersion == 2 && (!errors.Is(err, ErrHeaderNonceReuse) || !errors.Is(err, ErrPolicy) || refused.Len() != 0) {
			t.Fatalf("%s: rewrap without AllowHeaderNonceReuse: %v, %d bytes written", s.Hex(), err, refused.Len())
		}
		o.AllowHeaderNonceReuse = true
		var out bytes.Buffer
		if _, _, err := Rewrap(ctx, &out, bytes.NewReader(old), o); err != nil {
			t.Fatalf("%s: %v", s.Hex(), err)
		}
		nw := out.Bytes()
		oh, _ := parseHeader(bytes.NewReader(old), HeaderLimits{})
		nh, _ := parseHeader(bytes.NewReader(nw), HeaderLimits{})
		// The shortcut: H = AES_K(0^128) with K derived from the data key.
		m := &DecryptionMaterials{}
		if err := newKR.OnDecrypt(ctx, m, nh.EncryptedDataKeys); err != nil {
			t.Fatal(err)
		}
		contentKey := contentKeyFor(t, s, m.DataKey, nh.MessageID)
		blk, _ := aes.NewCipher(contentKey)
		var h [16]byte
		blk.Encrypt(h[:], h[:])
		lhs := xor16(oh.AuthTag, nh.AuthTag)
		g1, g2 := ghashAAD(h, oh.body), ghashAAD(h, nh.body)
		isRoot := lhs == xor16(g1[:], g2[:])
		if isRoot != (s.MessageVersion == 2) {
			t.Fatalf("%s: H is a root of the tag polynomial: %v (v%d header IVs %x, %x)", s.Hex(), isRoot, s.MessageVersion, oh.AuthIV, nh.AuthIV)
		}
		if s.MessageVersion != 2 {
			continue
		}
		// The forgery: the new message's EDKs, a context of the
		// attacker's choosing, the untouched body, a tag from H and the
		// mask, and for 0x0578 the attacker's own signing key.
		mask := xor16(nh.AuthTag, g2[:])
		fh := *nh
		fh.Context = EncryptionContext{"tenant": "mallory"}
		var attacker *ecdsa.PrivateKey
		if s.Signed() {
			attacker, _ = ecdsa.GenerateKey(s.curve, rand.Reader)
			fh.Context[publicKeyContextKey], _ = compressPublicKey(&attacker.PublicKey)
		}
		fb, err := fh.marshalBody()
		if err != nil {
			t.Fatal(err)
		}
		g3 := ghashAAD(h, fb)
		tag := xor16(g3[:], mask[:])
		forged := append(append(fb, tag[:]...), bodyBytes(old, oh)...)
		if s.Signed() {
			sh := s.signHash()
			sh.Write(forged)
			sig, _ := ecdsa.SignASN1(rand.Reader, attacker, sh.Sum(nil))
			forged = append(binary.BigEndian.AppendUint16(forged, uint16(len(sig))), sig...)
		}
		got, gh, err := Decrypt(ctx, forged, DecryptOptions{CMM: NewDefaultCMM(newKR), CommitmentPolicy: pol})
		if err != nil || !bytes.Equal(got, pt) || gh.Context["tenant"] != "mallory" {
			t.Fatalf("%s: the forgery did not decrypt under the new key group: %v", s.Hex(), err)
		}
	}
}

// contentKeyFor repeats the committing suites' key derivation (the test
// needs the raw content key, which messageKeys keeps only inside its AEAD).
func contentKeyFor(t *testing.T, s *Suite, dataKey, messageID []byte) []byte {
	t.Helper()
	if !s.Committing {
		info := string(binary.BigEndian.AppendUint16(nil, s.ID)) + string(messageID)
		return hkdfKey(t, s.kdf, dataKey, nil, info, s.KeyLen)
	}
	info := string(binary.BigEndian.AppendUint16(nil, s.ID)) + "DERIVEKEY"
	return hkdfKey(t, s.kdf, dataKey, messageID, info, s.KeyLen)
}

// bodyBytes returns the body (and for signed suites the footer, which the
// caller replaces) of msg: everything after the header, minus the footer.
func bodyBytes(msg []byte, h *Header) []byte {
	b := msg[h.Len():]
	if !h.Suite.Signed() {
		return b
	}
	// The footer is the last 2+n bytes; find n from the end by trying
	// the lengths an ASN.1 P-384 signature can have.
	for n := 100; n <= 110; n++ {
		if len(b) >= n+2 && int(binary.BigEndian.Uint16(b[len(b)-n-2:])) == n {
			return b[:len(b)-n-2]
		}
	}
	return b
}

func hkdfKey(t *testing.T, h func() hash.Hash, secret, salt []byte, info string, n int) []byte {
	t.Helper()
	k, err := hkdf.Key(h, secret, salt, info, n)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
