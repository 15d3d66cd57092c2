#!/usr/bin/env bash
# Create (once) a virtualenv with a pinned MCP Python SDK for the end-to-end and interop tests.
# usage: ensure-venv.sh [REQUIREMENTS [VENV]]  (default: requirements.txt → target/py-venv, the
# current SDK; requirements-sdk1.txt → target/py-venv-sdk1 is the 1.x line for interop).
# Prints the venv's python path. Idempotent: a venv whose requirements are unchanged is reused.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
requirements="${1:-$here/requirements.txt}"
venv="${2:-${MCPGATE_PY_VENV:-$here/../../target/py-venv}}"
stamp="$venv/.requirements"
need() { echo "ensure-venv.sh: $1" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  command -v python3 >/dev/null || need "python3 is needed (Debian/Ubuntu: apt-get install python3 python3-venv)"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 || need "python3 cannot create a virtualenv (Debian/Ubuntu: apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2 \
    || need "pip could not install $(basename "$requirements") — the tests need access to PyPI (or a mirror: PIP_INDEX_URL)"
  cp "$requirements" "$stamp"
fi
echo "$venv/bin/python"
