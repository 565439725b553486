#!/usr/bin/env bash
# Interop peers (idempotent): the AWS Encryption SDK for JavaScript in
# interop/jspeer (npm ci, only when node_modules is missing or does not match
# package-lock.json) and the Go modules of the nested interop module,
# including the AWS Encryption SDK for Go, downloaded and compiled once (a
# cold compile of that SDK takes ~3 minutes on 2 cores; later runs hit the
# Go build cache).
set -euo pipefail
cd "$(dirname "$0")/../../interop"

js=jspeer
stamp="$js/node_modules/.encjob-lock.sha256"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "20-interop: node/npm not found: the JS interop tests will skip (or fail when CI=true)" >&2
else
  want="$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)"
  have="$(cat "$stamp" 2>/dev/null || true)"
  if [ ! -d "$js/node_modules/@aws-crypto/client-node" ] || [ "$want" != "$have" ]; then
    echo "20-interop: npm ci in interop/$js" >&2
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
fi

go mod download
go build ./...
