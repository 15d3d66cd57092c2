#!/usr/bin/env bash
# The soak, one command: installs nginx-light, wrk, node and openssl (Debian) when missing, builds
# mcpgate --release, then runs tests/soak/soak.py on loopback — a million mixed requests while the
# IdP and the upstream are killed and restarted (--quick: fifty thousand). Bounded: 15 minutes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
missing=()
for pair in nginx:nginx-light wrk:wrk node:nodejs openssl:openssl; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "--- soak: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "--- soak: building mcpgate --release"
(cd "$root" && cargo build --release --locked -p mcpgate)
echo "--- soak: running"
exec python3 "$here/soak.py" "$@"
