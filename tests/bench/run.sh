#!/usr/bin/env bash
# The benchmark suite, one command: installs nginx-light and wrk (Debian) when missing, builds
# mcpgate --release, then runs every variant back to back (tests/bench/bench.py). Loopback only,
# bounded in time (about 6 minutes; --quick about 1). Arguments go to bench.py (--quick, --write-doc).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  echo "--- bench: installing nginx-light and wrk"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq nginx-light wrk >/dev/null
fi
echo "--- bench: building mcpgate --release"
(cd "$root" && cargo build --release --locked -p mcpgate)
echo "--- bench: running"
exec python3 "$here/bench.py" "$@"
