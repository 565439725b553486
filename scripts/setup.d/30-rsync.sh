#!/usr/bin/env bash
# rsync, for the restore-style tests of change detection (cmd/encjob
# TestRestoredSourceIsReencrypted restores a file with `rsync -t` as a
# backup job would). Idempotent: does nothing when rsync is installed.
set -euo pipefail
if command -v rsync >/dev/null 2>&1; then
  echo "30-rsync: rsync already installed" >&2
  exit 0
fi
echo "30-rsync: installing rsync" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync
