#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the servers and peer ESDKs
# the tests talk to, then runs every Go test (unit, vectors, S3, KMS
# emulator, interop), the KMS conformance suite against local-kms in a
# private network namespace, and a short fuzz pass. CI=true makes any missing
# server a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}"
export PATH="$(go env GOPATH)/bin:$PATH"

bash scripts/setup.sh

go vet ./...
go test -count=1 -timeout 30m ./...
# The KMS conformance suite again, against local-kms as well as kmsemu, in
# a private network namespace (local-kms listens on every interface).
bash scripts/kms-conformance.sh
(cd interop && go vet ./... && go test -count=1 -timeout 20m ./...)
bash scripts/fuzz.sh 10s
