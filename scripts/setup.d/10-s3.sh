#!/usr/bin/env bash
# Installs versitygw, the S3-compatible server the sources/s3 tests (and the
# executor/e2e S3 tests through sources/s3test) start on loopback.
# Idempotent: does nothing when the pinned version is already installed.
set -euo pipefail
VERSION="${VERSITYGW_VERSION:-v1.8.0}"
BIN="$(go env GOPATH)/bin/versitygw"
STAMP="$(go env GOPATH)/bin/.versitygw-version"
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
  echo "10-s3: versitygw $VERSION already installed" >&2
  exit 0
fi
echo "10-s3: installing versitygw $VERSION" >&2
# Build in a scratch module context so the project's go.mod is untouched.
(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSION")
echo "$VERSION" >"$STAMP"
