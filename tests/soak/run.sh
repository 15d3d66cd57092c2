#!/usr/bin/env bash
# The soak, one command: installs nginx-light, wrk, node and openssl (Debian) when missing, builds
# mcpgate --release, then runs tests/soak/soak.py on loopback — a million mixed requests while the
# IdP and the upstream are killed and restarted (--quick: at least 50,000 in 30 s). Bounded: 15 minutes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bash "$root/tests/bench/install-tools.sh" nginx:nginx-light wrk:wrk node:nodejs openssl:openssl
echo "--- soak: building mcpgate --release"
(cd "$root" && cargo build --release --locked -p mcpgate)
echo "--- soak: running"
exec python3 "$here/soak.py" "$@"
