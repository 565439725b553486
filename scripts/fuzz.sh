#!/usr/bin/env bash
# Runs every fuzz target for a short fixed time (default 10s each).
#
# A target that fails with a bare "context deadline exceeded" at the end of
# its -fuzztime and wrote no failing input is Go's fuzz coordinator racing
# its own deadline (go.dev/issue/75804, fixed in Go 1.27, present in the
# go1.26 toolchain go.mod names): reported as a flake, not a failure. Any
# other failure, or any new file in the target's testdata/fuzz directory,
# fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
out="$(mktemp)"
files() { { find "$1" -type f 2>/dev/null || true; } | wc -l; } # the corpus directory may not exist
trap 'rm -f "$out"' EXIT
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./interop/' | while read -r f; do
  pkg="./$(dirname "${f#./}")"
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "fuzz: $pkg $fn ($t)" >&2
    corpus="$pkg/testdata/fuzz/$fn"
    before="$(files "$corpus")"
    rc=0
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" "$pkg" 2>&1 | tee "$out" || rc=$?
    [ "$rc" -eq 0 ] && continue
    after="$(files "$corpus")"
    if [ "$after" -eq "$before" ] && grep -q '^    context deadline exceeded$' "$out" &&
      ! grep -q -e 'Failing input written' -e '^panic' -e 'fuzz: minimizing' "$out"; then
      echo "fuzz: $pkg $fn: the fuzz coordinator's deadline race (go.dev/issue/75804), no failing input: not a failure" >&2
      continue
    fi
    echo "fuzz: $pkg $fn failed" >&2
    exit 1
  done
done
