// The aws-encryption-cli view of a message header: the `header` and
// `header_auth` objects of a metadata line. It lives with the record schema,
// not in the message engine, because only the metadata log and `inspect`
// speak aws-encryption-cli's vocabulary.

package report

import (
	"bytes"
	"encoding/base64"
	"sort"

	"github.com/encjob/encjob/crypto"
)

// CLIHeader is the `header` object aws-encryption-cli writes in its
// metadata output: field names, base64 encodings and EDK order as it
// writes them (EDKs sorted by provider id then key info).
type CLIHeader struct {
	Version           string            `json:"version"` // "1.0" or "2.0"
	Type              *int              `json:"type"`    // 128 on v1, null on v2
	Algorithm         string            `json:"algorithm"`
	MessageID         string            `json:"message_id"`
	EncryptionContext map[string]string `json:"encryption_context"`
	EncryptedDataKeys []CLIDataKey      `json:"encrypted_data_keys"`
	ContentType       int               `json:"content_type"`
	HeaderIVLength    *int              `json:"header_iv_length"` // 12 on v1, null on v2 (no header IV field)
	FrameLength       uint32            `json:"frame_length"`
	// CommitmentKey is the v2 algorithm suite data (the commitment key of
	// a committing suite), base64; null on v1, as the cli writes it.
	CommitmentKey *string `json:"commitment_key"`
}

// CLIDataKey is one EDK in a CLIHeader.
type CLIDataKey struct {
	KeyProvider struct {
		ProviderID string `json:"provider_id"` // base64 of the provider id
		KeyInfo    string `json:"key_info"`    // base64
	} `json:"key_provider"`
	EncryptedDataKey string `json:"encrypted_data_key"` // base64
}

// CLIHeaderAuth is the `header_auth` object written on decrypt.
type CLIHeaderAuth struct {
	IV  string `json:"iv"`
	Tag string `json:"tag"`
}

// CLIHeaderOf renders h as aws-encryption-cli does.
func CLIHeaderOf(h *crypto.Header) CLIHeader {
	b64 := base64.StdEncoding.EncodeToString
	out := CLIHeader{Version: "1.0", Algorithm: h.Suite.Name, MessageID: b64(h.MessageID),
		EncryptionContext: map[string]string(h.Context.Clone()), ContentType: h.ContentType,
		FrameLength: h.FrameLength}
	if h.Version == 1 {
		t, n := int(h.Type), h.IVLength
		out.Type, out.HeaderIVLength = &t, &n
	} else {
		out.Version = "2.0"
		if len(h.CommitKey) > 0 {
			ck := b64(h.CommitKey)
			out.CommitmentKey = &ck
		}
	}
	edks := append([]crypto.EncryptedDataKey(nil), h.EncryptedDataKeys...)
	sort.SliceStable(edks, func(i, j int) bool {
		a := append([]byte(edks[i].ProviderID), edks[i].ProviderInfo...)
		b := append([]byte(edks[j].ProviderID), edks[j].ProviderInfo...)
		return bytes.Compare(a, b) < 0
	})
	out.EncryptedDataKeys = make([]CLIDataKey, len(edks))
	for i, k := range edks {
		d := &out.EncryptedDataKeys[i]
		d.KeyProvider.ProviderID = b64([]byte(k.ProviderID))
		d.KeyProvider.KeyInfo = b64(k.ProviderInfo)
		d.EncryptedDataKey = b64(k.Ciphertext)
	}
	return out
}

// CLIHeaderAuthOf renders the header authentication section of h.
func CLIHeaderAuthOf(h *crypto.Header) CLIHeaderAuth {
	b64 := base64.StdEncoding.EncodeToString
	return CLIHeaderAuth{IV: b64(h.AuthIV), Tag: b64(h.AuthTag)}
}
