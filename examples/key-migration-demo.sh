#!/usr/bin/env bash
# Runs examples/key-migration.yaml end to end against the KMS emulator, with
# no AWS account: encrypts examples/data under key A, migrates the tree in
# place to key group B (a multi-Region key, wrapped in eu-west-1 and
# us-east-1), then decrypts with the eu-west-1 replica alone and compares.
#
#   bash examples/key-migration-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'kill "${emu_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

ENCJOB="${ENCJOB_BIN:-}"
if [ -z "$ENCJOB" ]; then ENCJOB="$work/encjob"; go build -o "$ENCJOB" ./cmd/encjob; fi
KMSEMU="${KMSEMU_BIN:-}"
if [ -z "$KMSEMU" ]; then KMSEMU="$work/kmsemu"; go build -o "$KMSEMU" ./cmd/kmsemu; fi

port=$((20000 + RANDOM % 20000))
"$KMSEMU" --addr "127.0.0.1:$port" --seed kmsemu/testdata/keys.yaml 2>"$work/kmsemu.log" &
emu_pid=$!
# Wait until the emulator serves (a loaded machine may take seconds), and say
# why when it cannot (the random port taken, say) instead of failing later.
for _ in $(seq 300); do
  grep -q "listening" "$work/kmsemu.log" 2>/dev/null && break
  kill -0 "$emu_pid" 2>/dev/null || { echo "kmsemu exited:" >&2; cat "$work/kmsemu.log" >&2; exit 1; }
  sleep 0.1
done
grep -q "listening" "$work/kmsemu.log" || { echo "kmsemu did not start within 30s:" >&2; cat "$work/kmsemu.log" >&2; exit 1; }

export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
export KMS_ENDPOINT="http://127.0.0.1:$port"
export KEY_A_ARN=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
export KEY_B_EU_ARN=arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab
export KEY_B_US_ARN=arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab
export AWS_ENDPOINT_URL_KMS="$KMS_ENDPOINT"
export MIGRATE_DIR="$work/tree"
mkdir -p "$MIGRATE_DIR" "$work/plain"

echo "== encrypt examples/data under key A"
"$ENCJOB" encrypt -r -i examples/data -o "$MIGRATE_DIR" -w "key=$KEY_A_ARN" -c purpose=demo -S -q
echo "== plan the migration (headers only, no KMS call per item)"
"$ENCJOB" plan -f examples/key-migration.yaml
echo "== apply"
"$ENCJOB" apply --auto-approve -f examples/key-migration.yaml --no-progress --metadata-output "$work/migration.jsonl"
echo "== second apply: nothing left to do"
"$ENCJOB" apply --auto-approve -f examples/key-migration.yaml --no-progress --metadata-output "$work/migration.jsonl"
echo "== decrypt with the eu-west-1 replica of key B alone"
"$ENCJOB" decrypt -r -i "$MIGRATE_DIR" -o "$work/plain" -w "key=$KEY_B_EU_ARN" -c migrated-from=key-a -S -q --strip-suffix
diff -r -x .encjob-state examples/data "$work/plain"
echo "== ok: every file migrated to key B and intact"
