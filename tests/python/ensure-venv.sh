#!/usr/bin/env bash
# Create (once) a virtualenv with the pinned MCP Python SDK for the end-to-end tests.
# Prints the venv's python path. Idempotent: a venv whose requirements are unchanged is reused.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${MCPGATE_PY_VENV:-$here/../../target/py-venv}"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$stamp"
fi
echo "$venv/bin/python"
