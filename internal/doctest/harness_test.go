package doctest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The harness: one encjob binary per test process, fresh copies of the
// repository, and an environment that holds nothing of the developer's
// (HOME, AWS_*) but what the Go toolchain needs to find its caches.

var (
	buildOnce sync.Once
	binDir    string // holds the encjob binary; first on PATH
	buildErr  error
)

// repoRoot is the repository this package lives in.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

// encjobBin builds the binary once (`go build -o BIN/encjob ./cmd/encjob`)
// and returns the directory holding it.
func encjobBin(t testing.TB) string {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "encjob-doctest-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "encjob"), "./cmd/encjob")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/encjob: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// goEnvVars are the toolchain settings a fresh HOME would lose (caches,
// proxy, flags that may live in the developer's go env file); passing
// them keeps `go install` in the docs from rebuilding the world.
var goEnvVars = []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN",
	"GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOINSECURE", "CGO_ENABLED"}

var (
	goEnvOnce sync.Once
	goEnv     []string
	goEnvErr  error
)

func toolchainEnv(t testing.TB) []string {
	t.Helper()
	goEnvOnce.Do(func() {
		out, err := exec.Command("go", append([]string{"env", "-json"}, goEnvVars...)...).Output()
		if err != nil {
			goEnvErr = fmt.Errorf("go env: %v", err)
			return
		}
		var m map[string]string
		if goEnvErr = json.Unmarshal(out, &m); goEnvErr != nil {
			return
		}
		for _, k := range goEnvVars {
			if v := m[k]; v != "" {
				goEnv = append(goEnv, k+"="+v)
			}
		}
	})
	if goEnvErr != nil {
		t.Fatal(goEnvErr)
	}
	return goEnv
}

// sandbox is a fresh copy of the repository with its own HOME and TMPDIR,
// all under one directory so a snapshot sees every write.
type sandbox struct {
	Top  string // holds repo/, home/, tmp/
	Repo string
	Home string
	Tmp  string
	Bin  string // the encjob binary (exec resolves names on the test's PATH, not Env's)
	Env  []string
}

// newSandbox copies the repository's files (tracked, and untracked but not
// ignored: what a clone holds once the work is committed) into a fresh
// directory and makes the environment the docs run in: PATH with encjob
// first, an empty HOME, TMPDIR inside the sandbox, no AWS_* variables, CI
// kept, and GOBIN on PATH so `go install ./cmd/encjob` works as the README
// says.
func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	return newSandboxAt(t, t.TempDir())
}

// newStableSandbox is newSandbox at a path that is the same on every run
// for this repository and name (emptied first and removed afterwards,
// held under a lock so two runs cannot share it). The Go build cache keys
// a main-module package on its directory, so the `go install ./cmd/encjob`
// a document runs compiles once per source change, not on every run.
func newStableSandbox(t testing.TB, name string) *sandbox {
	t.Helper()
	sum := sha256.Sum256([]byte(repoRoot(t) + "\x00" + name))
	top := filepath.Join(os.TempDir(), "encjob-doctest-"+hex.EncodeToString(sum[:6]))
	lock, err := os.OpenFile(top+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		t.Fatal(err)
	}
	clean := func() {
		// Module-cache style read-only directories (none expected) would
		// stop RemoveAll; make everything writable first.
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
		os.RemoveAll(top)
	}
	clean()
	t.Cleanup(func() {
		clean()
		lock.Close() // releases the flock
	})
	if err := os.Mkdir(top, 0o755); err != nil {
		t.Fatal(err)
	}
	return newSandboxAt(t, top)
}

func newSandboxAt(t testing.TB, top string) *sandbox {
	t.Helper()
	bin := encjobBin(t)
	s := &sandbox{Top: top, Repo: filepath.Join(top, "repo"), Home: filepath.Join(top, "home"), Tmp: filepath.Join(top, "tmp"),
		Bin: filepath.Join(bin, "encjob")}
	for _, d := range []string{s.Repo, s.Home, s.Tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyRepo(t, repoRoot(t), s.Repo)
	s.Env = []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + s.Home,
		"TMPDIR=" + s.Tmp,
		"GOBIN=" + bin,
	}
	for _, k := range []string{"CI", "LANG", "USER", "LOGNAME"} {
		if v, ok := os.LookupEnv(k); ok {
			s.Env = append(s.Env, k+"="+v)
		}
	}
	s.Env = append(s.Env, toolchainEnv(t)...)
	return s
}

// copyRepo copies the files git lists for root into dst, keeping modes.
func copyRepo(t testing.TB, root, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files in %s (the docs test copies what a clone holds): %v", root, err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if rel == "" {
			continue
		}
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree, not yet in git
		} else if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, to); err != nil {
				t.Fatal(err)
			}
		case fi.Mode().IsRegular():
			if err := copyFile(src, to, fi.Mode().Perm()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// gitCommitAll makes the sandbox a git repository with every file
// committed, so `git status` in the docs (and the test's own check that
// nothing the docs produced is committable) behaves as in a clone.
func (s *sandbox) gitCommitAll(t testing.TB) {
	t.Helper()
	env := append(append([]string(nil), s.Env...), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=doctest", "GIT_AUTHOR_EMAIL=doctest@example.invalid",
		"GIT_COMMITTER_NAME=doctest", "GIT_COMMITTER_EMAIL=doctest@example.invalid")
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "--no-gpg-sign", "-m", "fresh clone"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = s.Repo, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// uncommittable lists what `git status` would offer to commit: files the
// docs created outside git-ignored paths, or tracked files they changed.
func (s *sandbox) uncommittable(t testing.TB) []string {
	t.Helper()
	cmd := exec.Command("git", "status", "--porcelain", "--untracked-files=all")
	cmd.Dir, cmd.Env = s.Repo, s.Env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git status: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// runResult is a finished command: combined output and exit code.
type runResult struct {
	Output string
	Code   int
}

// run runs name args in dir with the sandbox's environment (plus extra),
// stdin empty, stdout and stderr combined in order, killed (with its
// process group) after timeout.
func (s *sandbox) run(t testing.TB, timeout time.Duration, dir string, extra []string, name string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), s.Env...), extra...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: timed out after %v\n%s", name, strings.Join(args, " "), timeout, out.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return runResult{Output: out.String(), Code: code}
}

// snapshot records every entry under dir: path, type and mode, size,
// modification time and, for files, a SHA-256 of the contents; for
// symlinks the target. Two equal snapshots mean nothing was created,
// removed, written, renamed or chmod'ed (a file rewritten with the same
// bytes still changes its mtime).
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		desc := fmt.Sprintf("%v mtime=%d", fi.Mode(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += fmt.Sprintf(" size=%d sha256=%s", fi.Size(), hex.EncodeToString(sum[:8]))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		snap[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// diffSnapshots describes what changed between two snapshots, one line
// per path, sorted.
func diffSnapshots(before, after map[string]string) []string {
	var diff []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			diff = append(diff, "removed  "+p+"  ("+b+")")
		case a != b:
			diff = append(diff, "changed  "+p+"  ("+b+" => "+a+")")
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			diff = append(diff, "created  "+p+"  ("+a+")")
		}
	}
	sort.Strings(diff)
	return diff
}
