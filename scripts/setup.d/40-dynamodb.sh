#!/usr/bin/env bash
# Installs dynamodb-server (scripts/dynamodb-server: minidyn, a third-party
# in-memory DynamoDB, behind a loopback listener), which the branch key
# store and hierarchical keyring tests start (crypto/keystore/keystoretest).
# It is its own module so the project's go.mod does not gain minidyn.
# Idempotent: does nothing when the installed binary was built from the
# current go.sum and main.go.
set -euo pipefail
cd "$(dirname "$0")/../dynamodb-server"
BIN="$(go env GOPATH)/bin/dynamodb-server"
STAMP="$(go env GOPATH)/bin/.dynamodb-server-version"
want="$(cat go.mod go.sum main.go | sha256sum | cut -d' ' -f1)"
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "40-dynamodb: dynamodb-server already installed" >&2
  exit 0
fi
echo "40-dynamodb: installing dynamodb-server (minidyn $(grep -m1 truora/minidyn go.mod | awk '{print $NF}'))" >&2
go install .
echo "$want" >"$STAMP"
