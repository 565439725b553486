#!/usr/bin/env bash
# Installs local-kms, the third-party KMS implementation the KMS
# conformance suite (internal/kmsconformance) runs against besides kmsemu.
# It is compiled from its Go module at a pinned version; scripts/kms-
# conformance.sh runs it, only inside a private network namespace.
# Idempotent: does nothing when the pinned version is already installed.
set -euo pipefail
# The namespace needs `ip` (iproute2) to bring loopback up.
if ! command -v ip >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "30-localkms: installing iproute2" >&2
  apt-get install -y -qq iproute2 >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null; }
fi
VERSION="${LOCALKMS_VERSION:-v0.0.0-20260228092603-2a5e92d09ab6}"
BIN="$(go env GOPATH)/bin/local-kms"
STAMP="$(go env GOPATH)/bin/.local-kms-version"
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
  echo "30-localkms: local-kms $VERSION already installed" >&2
  exit 0
fi
echo "30-localkms: installing local-kms $VERSION" >&2
# Build in a scratch module context so the project's go.mod is untouched.
(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go install "github.com/nsmithuk/local-kms@$VERSION")
echo "$VERSION" >"$STAMP"
