#!/usr/bin/env bash
# Installs what the tests need on a fresh machine (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"
for s in scripts/setup.d/*.sh; do
  [ -e "$s" ] || continue
  echo "setup: $s" >&2
  bash "$s"
done
