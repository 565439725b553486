package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/encjob/encjob/spec"
)

// argFixture makes a tree the argument tests can name: in/ (a directory
// with a.txt), file.txt, out/ (an existing directory) and a key file.
func argFixture(t *testing.T) (dir string, expand func([]string) []string) {
	t.Helper()
	dir = t.TempDir()
	for _, p := range []string{"in/a.txt", "in/b.txt", "file.txt", "file.txt.encrypted"} {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	return dir, func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = strings.ReplaceAll(a, "$D", dir)
		}
		return out
	}
}

const (
	kmsARN  = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	kmsARN2 = "arn:aws:kms:eu-west-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
)

var rawW = []string{"-w", "provider=raw-aes", "key-file=$D/key", "namespace=ns", "name=k"}

func enc(extra ...string) []string {
	return append(append([]string{"-i", "$D/file.txt", "-o", "$D/out"}, rawW...), append([]string{"-S"}, extra...)...)
}

func dec(extra ...string) []string {
	return append([]string{"-i", "$D/file.txt.encrypted", "-o", "$D/out", "-w", "key=" + kmsARN, "-S"}, extra...)
}

func TestParseCryptoArgs(t *testing.T) {
	ptr := func(s string) *string { return &s }
	tests := []struct {
		name    string
		mode    string
		args    []string
		check   func(t *testing.T, r *cryptoRun, dir string)
		errFlag string // want a usage error naming this flag
	}{
		{name: "encrypt mode flag -e", mode: "", args: append([]string{"-e"}, enc()...), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Operation != spec.OpEncrypt {
				t.Errorf("operation %q", r.Job.Operation)
			}
		}},
		{name: "decrypt mode flag --decrypt", mode: "", args: append([]string{"--decrypt"}, dec()...), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Operation != spec.OpDecrypt || r.Job.Decrypt.UnsignedOnly {
				t.Errorf("operation %q unsigned %v", r.Job.Operation, r.Job.Decrypt.UnsignedOnly)
			}
		}},
		{name: "decrypt-unsigned mode", mode: "", args: append([]string{"--decrypt-unsigned"}, dec()...), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Operation != spec.OpDecrypt || !r.Job.Decrypt.UnsignedOnly {
				t.Errorf("want unsigned-only decrypt, got %q %v", r.Job.Operation, r.Job.Decrypt.UnsignedOnly)
			}
		}},
		{name: "s3 without conditional writes", mode: "encrypt", args: append([]string{"--s3-no-conditional-writes"}, enc()...), check: func(t *testing.T, r *cryptoRun, _ string) {
			if !r.Job.S3.NoConditionalWrites {
				t.Errorf("--s3-no-conditional-writes: spec s3.noConditionalWrites not set")
			}
		}},
		{name: "s3 conditional writes by default", mode: "encrypt", args: enc(), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.S3.NoConditionalWrites {
				t.Errorf("s3.noConditionalWrites set without the flag")
			}
		}},
		{name: "no mode", mode: "", args: enc(), errFlag: "-e/-d"},
		{name: "two modes", mode: "", args: append([]string{"-e", "-d"}, enc()...), errFlag: "-e/-d"},
		{name: "decrypt flag on encrypt", mode: "encrypt", args: append([]string{"-d"}, enc()...), errFlag: "--decrypt"},
		{name: "input file output dir", mode: "encrypt", args: enc(), check: func(t *testing.T, r *cryptoRun, dir string) {
			if got := r.Job.Sources; len(got) != 1 || got[0].Path != dir+"/file.txt" {
				t.Errorf("sources %+v", got)
			}
			if r.Job.Output.Path != dir+"/out" || r.Job.Output.Suffix != ".encrypted" || r.Job.Output.StripSuffix != "" {
				t.Errorf("output %+v", r.Job.Output)
			}
		}},
		{name: "input missing", mode: "encrypt", args: []string{"-o", "$D/out", "-S", "-w", "key=" + kmsARN}, errFlag: "-i/--input"},
		{name: "input does not exist", mode: "encrypt", args: []string{"-i", "$D/nope", "-o", "$D/out", "-S", "-w", "key=" + kmsARN}, errFlag: "-i/--input"},
		{name: "output missing", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-S", "-w", "key=" + kmsARN}, errFlag: "-o/--output"},
		{name: "stdin to stdout", mode: "encrypt", args: []string{"-i", "-", "-o", "-", "-S", "-w", "key=" + kmsARN}, check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Sources[0].Path != "-" || !r.Job.Output.Stdout || r.Job.Output.Suffix != "" {
				t.Errorf("job %+v %+v", r.Job.Sources, r.Job.Output)
			}
		}},
		{name: "stdin to a directory", mode: "encrypt", args: []string{"-i", "-", "-o", "$D/out", "-S", "-w", "key=" + kmsARN}, errFlag: "-o/--output"},
		{name: "output file", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out/x.enc", "-S", "-w", "key=" + kmsARN}, check: func(t *testing.T, r *cryptoRun, dir string) {
			if r.Job.Output.Path != dir+"/out/x.enc" {
				t.Errorf("output %+v", r.Job.Output)
			}
		}},
		{name: "output file in missing directory", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/nodir/x", "-S", "-w", "key=" + kmsARN}, errFlag: "-o/--output"},
		{name: "source equals destination", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/file.txt", "-S", "-w", "key=" + kmsARN}, errFlag: "-o/--output"},
		{name: "s3 input and output", mode: "encrypt", args: []string{"-i", "s3://bucket/in/", "-r", "-o", "s3://bucket/out/", "-S", "-w", "key=" + kmsARN}, check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Sources[0].Path != "s3://bucket/in/" || r.Job.Output.Path != "s3://bucket/out/" {
				t.Errorf("job %+v %+v", r.Job.Sources, r.Job.Output)
			}
		}},
		{name: "s3 prefix without -r", mode: "encrypt", args: []string{"-i", "s3://bucket/in/", "-o", "s3://bucket/out/", "-S", "-w", "key=" + kmsARN}, errFlag: "-i/--input"},
		{name: "directory without -r", mode: "encrypt", args: []string{"-i", "$D/in", "-o", "$D/out", "-S", "-w", "key=" + kmsARN}, errFlag: "-i/--input"},
		{name: "directory with -r", mode: "encrypt", args: []string{"-i", "$D/in", "-o", "$D/out", "-r", "-S", "-w", "key=" + kmsARN}, check: func(t *testing.T, r *cryptoRun, dir string) {
			if r.Job.Sources[0].Path != dir+"/in" {
				t.Errorf("sources %+v", r.Job.Sources)
			}
		}},
		{name: "directory with -R", mode: "encrypt", args: []string{"-i", "$D/in", "-o", "$D/out", "-R", "-S", "-w", "key=" + kmsARN}, check: func(t *testing.T, r *cryptoRun, _ string) {}},
		{name: "directory with --recursive", mode: "encrypt", args: []string{"-i", "$D/in", "-o", "$D/out", "--recursive", "-S", "-w", "key=" + kmsARN}, check: func(t *testing.T, r *cryptoRun, _ string) {}},
		{name: "directory to a file", mode: "encrypt", args: []string{"-i", "$D/in", "-o", "$D/x", "-r", "-S", "-w", "key=" + kmsARN}, errFlag: "-o/--output"},
		{name: "glob", mode: "encrypt", args: []string{"-i", "$D/in/*.txt", "-o", "$D/out", "-S", "-w", "key=" + kmsARN}, check: func(t *testing.T, r *cryptoRun, dir string) {
			if len(r.Job.Sources) != 2 || r.Job.Sources[0].Path != dir+"/in/a.txt" || r.Job.Sources[1].Path != dir+"/in/b.txt" {
				t.Errorf("sources %+v", r.Job.Sources)
			}
		}},
		{name: "glob without matches", mode: "encrypt", args: []string{"-i", "$D/in/*.none", "-o", "$D/out", "-S", "-w", "key=" + kmsARN}, errFlag: "-i/--input"},
		{name: "wrapping keys one group several keys", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S", "-w", "key=" + kmsARN, "key=" + kmsARN2, "region=us-west-2", "profile=p"}, check: func(t *testing.T, r *cryptoRun, _ string) {
			g := r.Job.KeyGroups[groupWrapping]
			want := &spec.KeyGroup{Provider: "aws-kms", Keys: []string{kmsARN, kmsARN2}, Region: "us-west-2", Profile: "p"}
			if !reflect.DeepEqual(g, want) {
				t.Errorf("group %+v", g)
			}
		}},
		{name: "wrapping keys: one member per group, the same key once per group", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S", "--wrapping-keys", "key=" + kmsARN, "key=" + kmsARN, "-w", "key=" + kmsARN2, "key=" + kmsARN}, check: func(t *testing.T, r *cryptoRun, _ string) {
			g := r.Job.KeyGroups[groupWrapping]
			want := &spec.KeyGroup{Members: []spec.KeyGroup{
				{Provider: "aws-kms", Keys: []string{kmsARN}},
				{Provider: "aws-kms", Keys: []string{kmsARN2, kmsARN}},
			}}
			if !reflect.DeepEqual(g, want) {
				t.Errorf("group %+v, want %+v (the first key generates)", g, want)
			}
			if r.Job.MaxEncryptedDataKeys != 10 {
				t.Errorf("default max EDKs %d", r.Job.MaxEncryptedDataKeys)
			}
		}},
		{name: "wrapping keys missing", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S"}, errFlag: "-w/--wrapping-keys"},
		{name: "wrapping keys not key=value", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S", "-w", kmsARN}, errFlag: "-w/--wrapping-keys"},
		{name: "wrapping keys discovery on encrypt", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S", "-w", "discovery=true"}, errFlag: "-w/--wrapping-keys"},
		{name: "wrapping keys discovery on decrypt", mode: "decrypt", args: []string{"-i", "$D/file.txt.encrypted", "-o", "$D/out", "-S", "-w", "discovery=true", "discovery-account=111122223333", "discovery-partition=aws"}, check: func(t *testing.T, r *cryptoRun, _ string) {
			g := r.Job.KeyGroups[groupWrapping]
			if !g.Discovery || g.DiscoveryFilter == nil || g.DiscoveryFilter.Partition != "aws" || g.DiscoveryFilter.Accounts[0] != "111122223333" {
				t.Errorf("group %+v", g)
			}
		}},
		{name: "wrapping keys discovery with key", mode: "decrypt", args: []string{"-i", "$D/file.txt.encrypted", "-o", "$D/out", "-S", "-w", "discovery=true", "key=" + kmsARN}, errFlag: "-w/--wrapping-keys"},
		{name: "wrapping keys account without partition", mode: "decrypt", args: []string{"-i", "$D/file.txt.encrypted", "-o", "$D/out", "-S", "-w", "discovery=yes", "discovery-account=111122223333"}, errFlag: "-w/--wrapping-keys"},
		{name: "wrapping keys decrypt needs key or discovery", mode: "decrypt", args: []string{"-i", "$D/file.txt.encrypted", "-o", "$D/out", "-S", "-w", "region=us-east-1"}, errFlag: "-w/--wrapping-keys"},
		{name: "wrapping keys raw-aes", mode: "encrypt", args: enc(), check: func(t *testing.T, r *cryptoRun, dir string) {
			g := r.Job.KeyGroups[groupWrapping]
			if g.Provider != "raw-aes" || g.KeyFile != dir+"/key" || g.Namespace != "ns" || g.Name != "k" || g.KeyEncoding != "raw" {
				t.Errorf("group %+v", g)
			}
		}},
		{name: "wrapping keys raw-aes base64", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S", "-w", "provider=raw-aes", "key-file=k", "namespace=ns", "name=k2", "key-encoding=base64"}, check: func(t *testing.T, r *cryptoRun, _ string) {
			if g := r.Job.KeyGroups[groupWrapping]; g.KeyEncoding != "base64" {
				t.Errorf("group %+v", g)
			}
		}},
		{name: "wrapping keys raw-rsa", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S", "-w", "provider=raw-rsa", "key-file=k.pem", "namespace=ns", "name=rsa", "padding=oaep-sha256"}, check: func(t *testing.T, r *cryptoRun, _ string) {
			g := r.Job.KeyGroups[groupWrapping]
			if g.Provider != "raw-rsa" || g.Padding != "oaep-sha256" || g.KeyFile != "k.pem" {
				t.Errorf("group %+v", g)
			}
		}},
		{name: "wrapping keys raw-rsa without padding", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S", "-w", "provider=raw-rsa", "key-file=k.pem", "namespace=ns", "name=rsa"}, errFlag: "-w/--wrapping-keys"},
		{name: "wrapping keys mixed providers make members", mode: "encrypt", args: append(enc(), "-w", "key="+kmsARN), check: func(t *testing.T, r *cryptoRun, dir string) {
			g := r.Job.KeyGroups[groupWrapping]
			want := &spec.KeyGroup{Members: []spec.KeyGroup{
				{Provider: "raw-aes", KeyFile: dir + "/key", KeyEncoding: "raw", Namespace: "ns", Name: "k"},
				{Provider: "aws-kms", Keys: []string{kmsARN}},
			}}
			if !reflect.DeepEqual(g, want) {
				t.Errorf("group %+v, want %+v", g, want)
			}
		}},
		{name: "wrapping keys kms regions differ make members", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S", "-w", "key=" + kmsARN, "region=us-west-2", "-w", "key=" + kmsARN2, "region=eu-west-1", "profile=p"}, check: func(t *testing.T, r *cryptoRun, _ string) {
			g := r.Job.KeyGroups[groupWrapping]
			want := &spec.KeyGroup{Members: []spec.KeyGroup{
				{Provider: "aws-kms", Keys: []string{kmsARN}, Region: "us-west-2"},
				{Provider: "aws-kms", Keys: []string{kmsARN2}, Region: "eu-west-1", Profile: "p"},
			}}
			if !reflect.DeepEqual(g, want) {
				t.Errorf("group %+v, want %+v", g, want)
			}
		}},
		{name: "wrapping keys kms groups stay apart", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S", "-w", "key=" + kmsARN, "grant-token=t1",
			"-w", "provider=raw-rsa", "key-file=k.pem", "namespace=ns", "name=rsa", "padding=oaep-sha1", "-w", "key=" + kmsARN2, "grant-token=t2"}, check: func(t *testing.T, r *cryptoRun, _ string) {
			g := r.Job.KeyGroups[groupWrapping]
			if len(g.Members) != 3 || !reflect.DeepEqual(g.Members[0].Keys, []string{kmsARN}) || !reflect.DeepEqual(g.Members[0].GrantTokens, []string{"t1"}) ||
				g.Members[1].Provider != "raw-rsa" || !reflect.DeepEqual(g.Members[2].GrantTokens, []string{"t2"}) {
				t.Errorf("group %+v (the first key must stay first: it generates)", g)
			}
		}},
		{name: "max encrypted data keys counts keys per group", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S",
			"-w", "key=" + kmsARN, "key=" + kmsARN2, "-w", "key=" + kmsARN, "key=" + kmsARN2, "-w", "key=" + kmsARN, "key=" + kmsARN2,
			"-w", "key=" + kmsARN, "key=" + kmsARN2, "-w", "key=" + kmsARN, "key=" + kmsARN2, "-w", "key=" + kmsARN, "key=" + kmsARN2}, check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.MaxEncryptedDataKeys != 12 {
				t.Errorf("default max EDKs %d, want 12 (what aws-encryption-cli would write)", r.Job.MaxEncryptedDataKeys)
			}
		}},
		{name: "discovery account not 12 digits is dropped with a note", mode: "decrypt", args: []string{"-i", "$D/file.txt.encrypted", "-o", "$D/out", "-S", "-w", "discovery=true",
			"discovery-account=abc", "discovery-account=111122223333", "discovery-account=1234", "discovery-partition=aws"}, check: func(t *testing.T, r *cryptoRun, _ string) {
			g := r.Job.KeyGroups[groupWrapping]
			if g.DiscoveryFilter == nil || !reflect.DeepEqual(g.DiscoveryFilter.Accounts, []string{"111122223333"}) {
				t.Errorf("filter %+v", g.DiscoveryFilter)
			}
			if len(r.Notes) != 2 || !strings.Contains(r.Notes[0], "discovery-account=abc") || !strings.Contains(r.Notes[1], "discovery-account=1234") {
				t.Errorf("notes %q", r.Notes)
			}
		}},
		{name: "discovery accounts none 12 digits", mode: "decrypt", args: []string{"-i", "$D/file.txt.encrypted", "-o", "$D/out", "-S", "-w", "discovery=true",
			"discovery-account=abc", "discovery-partition=aws"}, errFlag: "-w/--wrapping-keys"},
		{name: "discovery account empty", mode: "decrypt", args: []string{"-i", "$D/file.txt.encrypted", "-o", "$D/out", "-S", "-w", "discovery=true",
			"discovery-account=", "discovery-partition=aws"}, errFlag: "-w/--wrapping-keys"},
		{name: "max encrypted data keys 65536", mode: "encrypt", args: enc("--max-encrypted-data-keys", "65536"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.MaxEncryptedDataKeys != 65536 {
				t.Errorf("max edks %d", r.Job.MaxEncryptedDataKeys)
			}
		}},
		{name: "max encrypted data keys -1", mode: "encrypt", args: enc("--max-encrypted-data-keys", "-1"), errFlag: "--max-encrypted-data-keys"},
		{name: "max encrypted data keys =-1", mode: "decrypt", args: dec("--max-encrypted-data-keys=-1"), errFlag: "--max-encrypted-data-keys"},
		{name: "frame length -1", mode: "encrypt", args: enc("--frame-length", "-1"), errFlag: "--frame-length"},
		{name: "frame length -1 on decrypt", mode: "decrypt", args: dec("--frame-length", "-1"), errFlag: "--frame-length"},
		{name: "frame length 0 is non-framed", mode: "encrypt", args: enc("--frame-length", "0"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if fl := r.Job.Encrypt.FrameLength; fl == nil || *fl != 0 {
				t.Errorf("frame length %v", fl)
			}
		}},
		{name: "max length -1", mode: "decrypt", args: dec("--max-length", "-1"), errFlag: "--max-length"},
		{name: "max length -1 on encrypt", mode: "encrypt", args: enc("--max-length", "-1"), errFlag: "--max-length"},
		{name: "max length -2", mode: "reencrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "--source-wrapping-keys", "key=" + kmsARN, "-w", "key=" + kmsARN2, "--max-length", "-2"}, errFlag: "--max-length"},
		{name: "single-dash help", mode: "encrypt", args: enc("-help"), errFlag: "-help"},
		{name: "single-dash help, no mode", mode: "", args: []string{"-help"}, errFlag: "-help"},
		{name: "single-dash prefix of a long flag", mode: "encrypt", args: enc("-recurs"), errFlag: "-recurs"},
		{name: "single-dash long with value", mode: "decrypt", args: dec("-max-length=5"), errFlag: "-max-length=5"},
		{name: "h in a cluster", mode: "encrypt", args: enc("-vh"), errFlag: "-vh"},
		{name: "--help with a value", mode: "encrypt", args: enc("--help=x"), errFlag: "--help=x"},
		{name: "bare --suffix before -help", mode: "encrypt", args: enc("--suffix", "-help"), errFlag: "-help"},
		{name: "cluster of short flags", mode: "encrypt", args: enc("-rq"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if !r.Quiet {
				t.Error("-rq: not quiet")
			}
		}},
		{name: "value starting with a dash is not a flag", mode: "encrypt", args: enc("--suffix=-help"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Output.Suffix != "-help" {
				t.Errorf("suffix %q", r.Job.Output.Suffix)
			}
		}},
		{name: "wrapping keys two raw-aes keys", mode: "encrypt", args: append(enc(), "-w", "provider=raw-aes", "key-file=k2", "namespace=ns", "name=k2"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if g := r.Job.KeyGroups[groupWrapping]; len(g.Members) != 2 || g.Members[0].Name != "k" || g.Members[1].Name != "k2" {
				t.Errorf("group %+v", g)
			}
		}},
		{name: "wrapping keys same raw key twice", mode: "encrypt", args: append(enc(), rawW...), errFlag: "-w/--wrapping-keys"},
		{name: "wrapping keys discovery and raw on decrypt", mode: "decrypt", args: []string{"-i", "$D/file.txt.encrypted", "-o", "$D/out", "-S", "-w", "discovery=true", "-w", "provider=raw-aes", "key-file=k", "namespace=ns", "name=k"}, check: func(t *testing.T, r *cryptoRun, _ string) {
			if g := r.Job.KeyGroups[groupWrapping]; len(g.Members) != 2 || !g.Members[0].Discovery || g.Members[1].Provider != "raw-aes" {
				t.Errorf("group %+v", g)
			}
		}},
		{name: "wrapping keys unknown provider", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-S", "-w", "provider=pgp", "key=x"}, errFlag: "-w/--wrapping-keys"},
		{name: "encryption context on encrypt", mode: "encrypt", args: enc("-c", "tenant=acme", "purpose=test", "tenant=second"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if !reflect.DeepEqual(r.Job.Encrypt.Context, map[string]string{"tenant": "acme", "purpose": "test"}) {
				t.Errorf("context %v", r.Job.Encrypt.Context)
			}
		}},
		{name: "encryption context bare key on encrypt", mode: "encrypt", args: enc("-c", "tenant"), errFlag: "-c/--encryption-context"},
		{name: "encryption context on decrypt with bare key", mode: "decrypt", args: dec("--encryption-context", "tenant=acme", "classification"), check: func(t *testing.T, r *cryptoRun, _ string) {
			want := map[string]*string{"tenant": ptr("acme"), "classification": nil}
			if !reflect.DeepEqual(r.Job.Decrypt.RequireContext, want) {
				t.Errorf("required %v", r.Job.Decrypt.RequireContext)
			}
		}},
		{name: "suffix", mode: "encrypt", args: enc("--suffix", ".enc"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Output.Suffix != ".enc" {
				t.Errorf("suffix %q", r.Job.Output.Suffix)
			}
		}},
		{name: "bare suffix is empty", mode: "decrypt", args: dec("--suffix"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Output.Suffix != "" || r.Job.Output.StripSuffix != "" {
				t.Errorf("output %+v", r.Job.Output)
			}
		}},
		{name: "decrypt names as aws-encryption-cli", mode: "decrypt", args: dec(), check: func(t *testing.T, r *cryptoRun, _ string) {
			if o := r.Job.Output; o.Suffix != ".decrypted" || o.StripSuffix != "" || o.Name("x.encrypted") != "x.encrypted.decrypted" {
				t.Errorf("output %+v", o)
			}
		}},
		{name: "strip suffix", mode: "decrypt", args: dec("--strip-suffix"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if o := r.Job.Output; o.Name("x.encrypted") != "x" || o.Name("y") != "y.decrypted" {
				t.Errorf("output %+v", o)
			}
		}},
		{name: "strip custom suffix", mode: "decrypt", args: dec("--strip-suffix=.enc"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if o := r.Job.Output; o.Name("x.enc") != "x" {
				t.Errorf("output %+v", o)
			}
		}},
		{name: "overwrite by default as aws-encryption-cli", mode: "encrypt", args: enc(), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Output.Overwrite != spec.OverwriteAlways || r.Interactive {
				t.Errorf("overwrite %q", r.Job.Output.Overwrite)
			}
		}},
		{name: "no-overwrite", mode: "encrypt", args: enc("--no-overwrite"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Output.Overwrite != spec.OverwriteNever {
				t.Errorf("overwrite %q", r.Job.Output.Overwrite)
			}
		}},
		{name: "interactive", mode: "encrypt", args: enc("--interactive"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if !r.Interactive {
				t.Error("not interactive")
			}
		}},
		{name: "interactive with no-overwrite", mode: "encrypt", args: enc("--interactive", "--no-overwrite"), errFlag: "--interactive"},
		{name: "encode", mode: "encrypt", args: enc("--encode"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Output.Encoding != "base64" {
				t.Errorf("encoding %q", r.Job.Output.Encoding)
			}
		}},
		{name: "encode on decrypt", mode: "decrypt", args: dec("--encode"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Output.Encoding != "base64" {
				t.Errorf("encoding %q", r.Job.Output.Encoding)
			}
		}},
		{name: "decode", mode: "decrypt", args: dec("--decode"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Sources[0].Encoding != "base64" {
				t.Errorf("encoding %q", r.Job.Sources[0].Encoding)
			}
		}},
		{name: "metadata output", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-w", "key=" + kmsARN, "--metadata-output", "$D/meta.jsonl"}, check: func(t *testing.T, r *cryptoRun, dir string) {
			if r.MetadataOutput != dir+"/meta.jsonl" || r.MetadataOverwrite {
				t.Errorf("metadata %q %v", r.MetadataOutput, r.MetadataOverwrite)
			}
		}},
		{name: "metadata required", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-w", "key=" + kmsARN}, errFlag: "--metadata-output"},
		{name: "metadata and suppress", mode: "encrypt", args: enc("--metadata-output", "-"), errFlag: "--metadata-output"},
		{name: "metadata inside output directory", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-w", "key=" + kmsARN, "--metadata-output", "$D/out/m"}, errFlag: "--metadata-output"},
		{name: "metadata stdout with stdout output", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "-", "-w", "key=" + kmsARN, "--metadata-output", "-"}, errFlag: "--metadata-output"},
		{name: "suppress metadata -S", mode: "encrypt", args: enc(), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.MetadataOutput != "" {
				t.Errorf("metadata %q", r.MetadataOutput)
			}
		}},
		{name: "suppress metadata long", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-w", "key=" + kmsARN, "--suppress-metadata"}, check: func(t *testing.T, r *cryptoRun, _ string) {}},
		{name: "overwrite metadata", mode: "encrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-w", "key=" + kmsARN, "--metadata-output", "$D/m", "--overwrite-metadata"}, check: func(t *testing.T, r *cryptoRun, _ string) {
			if !r.MetadataOverwrite {
				t.Error("overwrite not set")
			}
		}},
		{name: "commitment policy", mode: "encrypt", args: enc("--commitment-policy", "require-encrypt-allow-decrypt"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.CommitmentPolicy != "require-encrypt-allow-decrypt" {
				t.Errorf("policy %q", r.Job.CommitmentPolicy)
			}
		}},
		{name: "commitment policy invalid", mode: "encrypt", args: enc("--commitment-policy", "maybe"), errFlag: "--commitment-policy"},
		{name: "caching", mode: "encrypt", args: enc("--caching", "capacity=10", "max_age=2.5", "max_messages_encrypted=7", "max_bytes_encrypted=1000"), check: func(t *testing.T, r *cryptoRun, _ string) {
			want := &spec.Caching{Capacity: 10, MaxAge: spec.Duration{Duration: 2500 * time.Millisecond}, MaxMessagesEncrypted: 7, MaxBytesEncrypted: 1000}
			if !reflect.DeepEqual(r.Job.Caching, want) {
				t.Errorf("caching %+v", r.Job.Caching)
			}
		}},
		{name: "caching needs capacity and max_age", mode: "encrypt", args: enc("--caching", "capacity=10"), errFlag: "--caching"},
		{name: "caching unknown key", mode: "encrypt", args: enc("--caching", "capacity=10", "max_age=1", "size=3"), errFlag: "--caching"},
		{name: "algorithm", mode: "encrypt", args: enc("--algorithm", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", "--commitment-policy", "require-encrypt-require-decrypt"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Encrypt.Algorithm != "AES_256_GCM_HKDF_SHA512_COMMIT_KEY" {
				t.Errorf("algorithm %q", r.Job.Encrypt.Algorithm)
			}
		}},
		{name: "algorithm unknown", mode: "encrypt", args: enc("--algorithm", "ROT13"), errFlag: "--algorithm"},
		{name: "algorithm ignored on decrypt", mode: "decrypt", args: dec("--algorithm", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if len(r.Notes) != 1 {
				t.Errorf("notes %v", r.Notes)
			}
		}},
		{name: "frame length", mode: "encrypt", args: enc("--frame-length", "1024"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if fl := r.Job.Encrypt.FrameLength; fl == nil || *fl != 1024 {
				t.Errorf("frame length %v", fl)
			}
		}},
		{name: "frame length zero is non-framed", mode: "encrypt", args: enc("--frame-length", "0"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if fl := r.Job.Encrypt.FrameLength; fl == nil || *fl != 0 {
				t.Errorf("frame length %v", fl)
			}
		}},
		{name: "frame length negative", mode: "encrypt", args: enc("--frame-length", "-5"), errFlag: "--frame-length"},
		{name: "max length", mode: "decrypt", args: dec("--max-length", "4096"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.Decrypt.MaxBodyLength != 4096 {
				t.Errorf("max body %d", r.Job.Decrypt.MaxBodyLength)
			}
		}},
		{name: "max encrypted data keys", mode: "encrypt", args: enc("--max-encrypted-data-keys", "3"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Job.MaxEncryptedDataKeys != 3 {
				t.Errorf("max edks %d", r.Job.MaxEncryptedDataKeys)
			}
		}},
		{name: "max encrypted data keys zero", mode: "encrypt", args: enc("--max-encrypted-data-keys", "0"), errFlag: "--max-encrypted-data-keys"},
		{name: "decrypt-unsigned on encrypt", mode: "encrypt", args: enc("--decrypt-unsigned"), errFlag: "--decrypt"},
		{name: "buffer accepted", mode: "encrypt", args: enc("--buffer"), check: func(t *testing.T, r *cryptoRun, _ string) {}},
		{name: "buffer short", mode: "encrypt", args: enc("-b"), check: func(t *testing.T, r *cryptoRun, _ string) {}},
		{name: "verbosity", mode: "encrypt", args: enc("-vv"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if r.Verbosity != 2 {
				t.Errorf("verbosity %d", r.Verbosity)
			}
		}},
		{name: "quiet", mode: "encrypt", args: enc("-q"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if !r.Quiet {
				t.Error("not quiet")
			}
		}},
		{name: "quiet and verbose", mode: "encrypt", args: enc("-q", "-v"), errFlag: "-q"},
		{name: "no progress", mode: "encrypt", args: enc("--no-progress"), check: func(t *testing.T, r *cryptoRun, _ string) {
			if !r.NoProgress {
				t.Error("progress not off")
			}
		}},
		{name: "single-dash long flag typo", mode: "encrypt", args: append([]string{"-input", "$D/file.txt"}, enc()[2:]...), errFlag: "-input"},
		{name: "unknown flag", mode: "encrypt", args: enc("--frobnicate"), errFlag: ""},
		{name: "reencrypt in place", mode: "reencrypt", args: []string{"-i", "$D/in", "-o", "$D/in", "-r", "--source-wrapping-keys", "key=" + kmsARN, "-w", "key=" + kmsARN2, "-c", "stage=2", "--remove-context", "old", "older"}, check: func(t *testing.T, r *cryptoRun, _ string) {
			j := r.Job
			if j.Operation != spec.OpReencrypt || !j.Output.InPlace || j.Decrypt.KeyGroup != groupSource || j.Encrypt.KeyGroup != groupWrapping {
				t.Errorf("job %+v", j)
			}
			if !reflect.DeepEqual(j.Reencrypt.Add, map[string]string{"stage": "2"}) || !reflect.DeepEqual(j.Reencrypt.Remove, []string{"old", "older"}) {
				t.Errorf("context edits %+v", j.Reencrypt)
			}
			if j.KeyGroups[groupSource].Keys[0] != kmsARN || j.KeyGroups[groupWrapping].Keys[0] != kmsARN2 {
				t.Errorf("groups %+v", j.KeyGroups)
			}
		}},
		{name: "reencrypt needs source keys", mode: "reencrypt", args: []string{"-i", "$D/file.txt", "-o", "$D/out", "-w", "key=" + kmsARN}, errFlag: "--source-wrapping-keys"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, expand := argFixture(t)
			r, err := parseCryptoArgs(tc.mode, expand(tc.args), osFS{})
			if tc.check == nil {
				var u *usageError
				if !errors.As(err, &u) {
					t.Fatalf("want a usage error, got %v", err)
				}
				if tc.errFlag != "" && u.Flag != tc.errFlag {
					t.Fatalf("error names %q, want %q: %v", u.Flag, tc.errFlag, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v (hint: %s)", err, hintOf(err))
			}
			tc.check(t, r, dir)
		})
	}
}

func TestNormalizeMulti(t *testing.T) {
	got := normalizeMulti([]string{"-w", "key=a", "key=b", "-c", "x=1", "-i", "-", "--suffix", "-S", "--caching=capacity=1", "max_age=2", "-wkey=c"})
	want := []string{"--wrapping-keys=key=a" + groupSep + "key=b", "--encryption-context=x=1", "-i", "-", "--suffix=", "-S",
		"--caching=capacity=1" + groupSep + "max_age=2", "--wrapping-keys=key=c"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestArgfiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "inner"), []byte("--suffix .x # trailing comment\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "args"), []byte(`# a comment line
-i "my file.txt" -o out
-w key=$KEY 'region=us west'   # comment
-c a=b\ c @`+filepath.Join(dir, "inner")+`
`), 0o644)
	lookup := func(k string) (string, bool) {
		if k == "KEY" {
			return "arn1", true
		}
		return "", false
	}
	got, err := expandArgfiles([]string{"encrypt", "@" + filepath.Join(dir, "args"), "-S", "--", "@literal"}, os.ReadFile, lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"encrypt", "-i", "my file.txt", "-o", "out", "-w", "key=arn1", "region=us west", "-c", "a=b c", "--suffix", ".x", "-S", "--", "@literal"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if _, err := expandArgfiles([]string{"@" + filepath.Join(dir, "missing")}, os.ReadFile, lookup); err == nil {
		t.Fatal("missing argument file accepted")
	}
	os.WriteFile(filepath.Join(dir, "bad"), []byte(`-i "unterminated`), 0o644)
	if _, err := expandArgfiles([]string{"@" + filepath.Join(dir, "bad")}, os.ReadFile, lookup); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}
