#!/usr/bin/env bash
# Interop tests: install the third-party software (pinned, into ignored folders), build mcpgate,
# then run every scenario (tests/interop/run.py) on free loopback ports. Extra arguments go to
# run.py (e.g. `--write-doc docs/compatibility.md`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

echo "--- interop: npm packages (package-lock.json)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

echo "--- interop: headless Chromium (the browser login, scenario 16)"
bash "$root/tests/bench/install-tools.sh" chromium:chromium

echo "--- interop: MCP Python SDK"
python="$(bash "$root/tests/python/ensure-venv.sh")"
MCP_SDK1_PYTHON="$(bash "$root/tests/python/ensure-venv.sh" "$root/tests/python/requirements-sdk1.txt" "$root/target/py-venv-sdk1")"
export MCP_SDK1_PYTHON

echo "--- interop: mcpgate"
(cd "$root" && cargo build --locked -p mcpgate)

echo "--- interop: scenarios"
exec "$python" "$here/run.py" "$@"
