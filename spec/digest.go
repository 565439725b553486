package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Digest is a stable SHA-256 (hex) of the job's normalised spec: the job
// with defaults applied, encoded as JSON (struct fields in declaration
// order, map keys sorted). Execution settings (concurrency, onError,
// retries, expectSkips, shards) are left out because they change how a
// plan runs, not what it does; Positions are left out too. Variables are
// already interpolated, so a changed ${VAR} changes the digest. The
// receiver is not modified.
func (j *Job) Digest() string {
	c := j.clone()
	c.Defaults()
	c.Execution = Execution{}
	return digestOf(APIVersion+"/"+KindJob, c)
}

// Digest is Job.Digest for a policy.
func (p *Policy) Digest() string {
	b, err := json.Marshal(p) // deep copy through JSON keeps p untouched
	if err != nil {
		panic("spec: policy does not encode as JSON: " + err.Error())
	}
	var c Policy
	if err := json.Unmarshal(b, &c); err != nil {
		panic("spec: policy does not round-trip through JSON: " + err.Error())
	}
	c.Defaults()
	c.Execution = Execution{}
	return digestOf(APIVersion+"/"+KindPolicy, &c)
}

func (j *Job) clone() *Job {
	b, err := json.Marshal(j)
	if err != nil {
		panic("spec: job does not encode as JSON: " + err.Error())
	}
	var c Job
	if err := json.Unmarshal(b, &c); err != nil {
		panic("spec: job does not round-trip through JSON: " + err.Error())
	}
	return &c
}

func digestOf(kind string, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("spec: cannot encode for digest: " + err.Error())
	}
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}
