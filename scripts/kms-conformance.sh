#!/usr/bin/env bash
# Runs the KMS conformance suite against local-kms (and kmsemu) inside a
# private network namespace: local-kms listens on every interface and has no
# option to bind loopback only, so it runs where loopback is the only
# interface there is, and the tests run in the same namespace. With
# CI=true a missing local-kms, or one that does not start, fails this step.
#
# Usage: scripts/kms-conformance.sh [go test packages...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./internal/kmsconformance/)

if ! command -v local-kms >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "kms-conformance: local-kms is not installed (scripts/setup.d/30-localkms.sh installs it)" >&2
    exit 1
  fi
  echo "kms-conformance: local-kms not installed: skipped (CI=true fails here)" >&2
  exit 0
fi
userns=()
[ "$(id -u)" = 0 ] || userns=(--map-root-user)
if ! unshare --net "${userns[@]}" true 2>/dev/null; then
  echo "kms-conformance: cannot create a network namespace (unshare --net): local-kms is not run outside one" >&2
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi

data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
# Inside the namespace: loopback up, local-kms on a fixed port (nothing else
# lives in this namespace), wait until it accepts connections, then the tests.
# GOPROXY=off: the namespace has no network; everything was downloaded by
# the earlier steps.
unshare --net "${userns[@]}" env DATA="$data" bash -c '
  set -euo pipefail
  ip link set lo up
  port=4599
  KMS_ACCOUNT_ID=111122223333 KMS_REGION=us-east-1 KMS_DATA_PATH="$DATA/db" \
    KMS_SEED_PATH="$DATA/no-seed.yaml" PORT=$port local-kms >"$DATA/local-kms.log" 2>&1 &
  pid=$!
  trap "kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true" EXIT
  for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
    if ! kill -0 $pid 2>/dev/null; then echo "kms-conformance: local-kms exited:" >&2; cat "$DATA/local-kms.log" >&2; exit 1; fi
    sleep 0.1
  done
  export ENCJOB_LOCALKMS_URL=http://127.0.0.1:$port
  GOPROXY=off go test -count=1 -timeout 10m ${GOTESTFLAGS:-} -run Conformance "$@" || { tail -50 "$DATA/local-kms.log" >&2; exit 1; }
' kms-conformance "${pkgs[@]}"
