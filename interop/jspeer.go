package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// SecurityRevertPKCS1 is the Node.js flag that re-enables RSA PKCS#1 v1.5
// private decryption, refused by Node.js releases since February 2024.
const SecurityRevertPKCS1 = "--security-revert=CVE-2023-46809"

// ErrNoJSPeer reports that node or the JS peer's node_modules is missing.
var ErrNoJSPeer = errors.New("interop: javascript peer unavailable")

// JSPeer runs jspeer/peer.js, the AWS Encryption SDK for JavaScript.
type JSPeer struct {
	Node string // path of the node binary
	Dir  string // the jspeer directory (peer.js, node_modules)
}

// FindJSPeer locates node and the jspeer directory next to this source
// file. It returns an error wrapping ErrNoJSPeer when either is missing
// (run scripts/setup.d/20-interop.sh).
func FindJSPeer() (*JSPeer, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return nil, fmt.Errorf("%w: cannot locate the interop directory", ErrNoJSPeer)
	}
	dir := filepath.Join(filepath.Dir(file), "jspeer")
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: node: %v", ErrNoJSPeer, err)
	}
	mod := filepath.Join(dir, "node_modules", "@aws-crypto", "client-node", "package.json")
	if _, err := os.Stat(mod); err != nil {
		return nil, fmt.Errorf("%w: %v (run scripts/setup.d/20-interop.sh)", ErrNoJSPeer, err)
	}
	return &JSPeer{Node: node, Dir: dir}, nil
}

// Version returns the installed @aws-crypto/client-node version.
func (p *JSPeer) Version() (string, error) {
	b, err := os.ReadFile(filepath.Join(p.Dir, "node_modules", "@aws-crypto", "client-node", "package.json"))
	if err != nil {
		return "", fmt.Errorf("interop: js peer version: %w", err)
	}
	var v struct{ Version string }
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("interop: js peer version: %w", err)
	}
	return v.Version, nil
}

// SupportsFlag reports whether node starts with the given flag (e.g.
// SecurityRevertPKCS1, which newer Node.js releases may drop).
func (p *JSPeer) SupportsFlag(ctx context.Context, flag string) bool {
	return exec.CommandContext(ctx, p.Node, flag, "-e", "0").Run() == nil
}

// Job is one operation of a batch: op is "encrypt" or "decrypt"; In and Out
// are file paths. See peer.js for the defaults.
type Job struct {
	ID                   string            `json:"id"`
	Op                   string            `json:"op"`
	In                   string            `json:"in"`
	Out                  string            `json:"out"`
	Keys                 []Key             `json:"keys"`
	Suite                string            `json:"suite,omitempty"` // "0x0578"
	FrameLength          *int              `json:"frame_length,omitempty"`
	Context              map[string]string `json:"context,omitempty"`
	CommitmentPolicy     string            `json:"commitment_policy,omitempty"`
	MaxEncryptedDataKeys int               `json:"max_encrypted_data_keys,omitempty"`
}

// Result is the outcome of one job. On success the other fields come from
// the message header as the JS ESDK wrote (encrypt) or parsed (decrypt) it.
type Result struct {
	ID          string            `json:"id"`
	OK          bool              `json:"ok"`
	Error       string            `json:"error,omitempty"`
	Suite       string            `json:"suite,omitempty"` // "0x0578"
	Version     int               `json:"version,omitempty"`
	MessageID   []byte            `json:"message_id_b64,omitempty"`
	FrameLength int               `json:"frame_length,omitempty"`
	ContentType int               `json:"content_type,omitempty"`
	Context     map[string]string `json:"context,omitempty"`
	EDKs        []EDK             `json:"edks,omitempty"`
	CommitKey   []byte            `json:"commit_key_b64,omitempty"` // v2 only
}

// EDK is an encrypted data key as the JS ESDK reports it.
type EDK struct {
	ProviderID   string `json:"provider_id"`
	ProviderInfo []byte `json:"provider_info_b64"`
	Ciphertext   []byte `json:"ciphertext_b64"`
}

// Batch runs jobs in one node process, started with the given extra node
// flags, and returns the results by job ID. A failed job is a Result with OK
// false; the error is for a batch that could not run at all.
func (p *JSPeer) Batch(ctx context.Context, workDir string, jobs []Job, nodeFlags ...string) (map[string]Result, error) {
	f, err := os.CreateTemp(workDir, "jobs-*.json")
	if err != nil {
		return nil, fmt.Errorf("interop: js batch: %w", err)
	}
	defer os.Remove(f.Name())
	err = json.NewEncoder(f).Encode(struct {
		Jobs []Job `json:"jobs"`
	}{jobs})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("interop: js batch: writing jobs: %w", err)
	}
	resultsFile := f.Name() + ".results"
	defer os.Remove(resultsFile)
	args := append(append([]string{}, nodeFlags...), filepath.Join(p.Dir, "peer.js"), "batch", "--jobs", f.Name(), "--results", resultsFile)
	cmd := exec.CommandContext(ctx, p.Node, args...)
	cmd.Dir = p.Dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("interop: js batch of %d jobs: %w: %s", len(jobs), err, strings.TrimSpace(stderr.String()))
	}
	b, err := os.ReadFile(resultsFile)
	if err != nil {
		return nil, fmt.Errorf("interop: js batch: reading results: %w", err)
	}
	var out struct {
		Results []Result `json:"results"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("interop: js batch: parsing results: %w", err)
	}
	m := make(map[string]Result, len(out.Results))
	for _, r := range out.Results {
		m[r.ID] = r
	}
	if len(m) != len(jobs) {
		return nil, fmt.Errorf("interop: js batch: %d results for %d jobs", len(m), len(jobs))
	}
	return m, nil
}
