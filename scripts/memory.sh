#!/usr/bin/env bash
# Peak memory of the encjob binary on large inputs (issue 8 item 5, issue 5).
#
#  1. Encrypts and decrypts a BENCH_SIZE file (default 10G; a sparse file
#     made with truncate) on local disk and checks the round trip.
#  2. Encrypts a S3_SIZE object (default 200M) into a real S3 server
#     (versitygw on loopback) with multipart upload and decrypts it back.
#
# Peak RSS comes from /usr/bin/time -v. Fails when any run's peak RSS is
# MAX_RSS_MIB (default 64) or more. Work files go under MEMORY_DIR (default
# $TMPDIR or /tmp); PART_SIZE sets the multipart part size (default 8MiB);
# the script refuses to start without 2.5x BENCH_SIZE
# free there. Sizes take IEC suffixes: 10G, 512M. S3_SIZE=0 skips step 2.
set -euo pipefail
cd "$(dirname "$0")/.."

size_h="${BENCH_SIZE:-10G}"
s3_h="${S3_SIZE:-200M}"
max_mib="${MAX_RSS_MIB:-64}"
base="${MEMORY_DIR:-${TMPDIR:-/tmp}}"
size=$(numfmt --from=iec "$size_h")
s3size=$(numfmt --from=iec "$s3_h")

die() { echo "memory.sh: $*" >&2; exit 1; }
[ -x /usr/bin/time ] || die "/usr/bin/time not found; install it (apt-get install time)"

need=$(( (size * 5 / 2) + (s3size * 3) ))
avail=$(( $(df --output=avail -k "$base" | tail -1) * 1024 ))
if [ "$avail" -lt "$need" ]; then
  die "$base has $(numfmt --to=iec "$avail") free; $(numfmt --to=iec "$need") needed for BENCH_SIZE=$size_h (set MEMORY_DIR or a smaller BENCH_SIZE)"
fi

work=$(mktemp -d "$base/encjob-memory.XXXXXX")
gw_pid=""
cleanup() {
  if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/encjob" ./cmd/encjob
head -c 32 /dev/urandom >"$work/key"
chmod 600 "$work/key"
W=(-w provider=raw-aes "key-file=$work/key" namespace=memory name=bench)
fail=0
results=()

# measure NAME CMD...: runs CMD under /usr/bin/time -v and records the peak
# RSS and wall time.
measure() {
  local name="$1"; shift
  local tv="$work/time.$name"
  if ! /usr/bin/time -v -o "$tv" "$@" >"$work/out.$name" 2>&1; then
    cat "$work/out.$name" >&2
    die "$name: command failed"
  fi
  local kb secs
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tv")
  local mib=$(( kb / 1024 ))
  local verdict=ok
  if [ "$mib" -ge "$max_mib" ]; then verdict="FAIL (>= ${max_mib} MiB)"; fail=1; fi
  results+=("$(printf '%-28s peak RSS %5d MiB (%d KiB)  wall %s  %s' "$name" "$mib" "$kb" "$secs" "$verdict")")
  echo "${results[-1]}" >&2
}

echo "memory.sh: local round trip of $size_h in $work" >&2
truncate -s "$size" "$work/in.bin"
measure "encrypt $size_h" "$work/encjob" encrypt -i "$work/in.bin" -o "$work/in.bin.encrypted" "${W[@]}" -S --no-progress
measure "decrypt $size_h" "$work/encjob" decrypt -i "$work/in.bin.encrypted" -o "$work/out.bin" "${W[@]}" -S --no-progress
[ "$(stat -c %s "$work/out.bin")" = "$size" ] || die "decrypted size differs"
cmp "$work/in.bin" "$work/out.bin" || die "decrypted content differs"
rm -f "$work/in.bin.encrypted" "$work/out.bin"

if [ "$s3size" -gt 0 ]; then
  gw="${VERSITYGW:-$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")}"
  [ -x "$gw" ] || die "versitygw not found; run scripts/setup.d/10-s3.sh"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ak=memorybench; sk=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$work/gw"
  ROOT_ACCESS_KEY=$ak ROOT_SECRET_KEY=$sk "$gw" --port "127.0.0.1:$port" --quiet posix "$work/gw" >"$work/gw.log" 2>&1 &
  gw_pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
  empty=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 # sha256 of nothing
  s3curl() { curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ak:$sk" -H "x-amz-content-sha256: $empty" "$@"; }
  s3curl -X PUT "http://127.0.0.1:$port/bench" >/dev/null || die "creating bucket failed: $(cat "$work/gw.log")"
  export AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_REGION=us-east-1 AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port"
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
  head -c "$s3size" /dev/urandom >"$work/s3in.bin"
  mkdir -p "$work/s3out"
  for op in encrypt decrypt; do
    if [ $op = encrypt ]; then src="$work/s3in.bin"; dst="s3://bench/enc/"; else src="s3://bench/enc/"; dst="$work/s3out"; fi
    cat >"$work/$op.yaml" <<YAML
apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: memory-s3-$op}
spec:
  operation: $op
  sources: [{path: "$src"}]
  output: {path: "$dst"}
  keyGroups:
    k: {provider: raw-aes, keyFile: "$work/key", namespace: memory, name: bench}
  $op: {keyGroup: k}
  s3: {pathStyle: true, region: us-east-1, partSize: ${PART_SIZE:-8MiB}}
YAML
    measure "s3 $op $s3_h" "$work/encjob" apply -f "$work/$op.yaml" --no-progress
  done
  got=$(find "$work/s3out" -type f | head -1)
  cmp "$work/s3in.bin" "$got" || die "S3 round trip changed the data"
  uploads=$(s3curl "http://127.0.0.1:$port/bench?uploads" | grep -c "<UploadId>" || true)
  [ "$uploads" = 0 ] || die "$uploads multipart uploads left open"
fi

echo
printf '%s\n' "${results[@]}"
[ "$fail" = 0 ] || die "peak RSS limit of ${max_mib} MiB exceeded"
echo "memory.sh: all runs under ${max_mib} MiB peak RSS"
