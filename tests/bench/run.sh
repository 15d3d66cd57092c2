#!/usr/bin/env bash
# The benchmark suite, one command: installs nginx-light, wrk, h2load (nghttp2-client), node and
# openssl (Debian) when missing, builds mcpgate --release, then runs every variant back to back
# (tests/bench/bench.py). Loopback only, bounded in time (about 20 minutes; --quick about 2).
# Arguments go to bench.py (--quick, --write-doc).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bash "$here/install-tools.sh" nginx:nginx-light wrk:wrk h2load:nghttp2-client node:nodejs openssl:openssl
echo "--- bench: building mcpgate and the bare pingora baseline --release"
(cd "$root" && cargo build --release --locked -p mcpgate -p mcpgate-bare-pingora)
echo "--- bench: running"
exec python3 "$here/bench.py" "$@"
