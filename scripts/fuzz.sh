#!/usr/bin/env bash
# Runs every fuzz target for a short fixed time (default 10s each).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./interop/' | while read -r f; do
  pkg="./$(dirname "${f#./}")"
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "fuzz: $pkg $fn ($t)" >&2
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" "$pkg"
  done
done
