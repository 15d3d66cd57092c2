#!/usr/bin/env bash
# Tests of deploy/ (Helm chart, sidecar example, Dockerfile, Grafana dashboard, alert rules) without
# a cluster or a Docker daemon: installs Helm v4 (the PyPI package helm-python-sdk, Helm's Go SDK as
# a shared library) into target/deploy-venv once, then runs tests/deploy/test_deploy.py.
# MCPGATE_BIN (default target/debug/mcpgate) must exist: the rendered configurations go through
# `mcpgate check`. Arguments name tests to run (e.g. `HelmChart.test_probes_use_the_admin_port`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="$(bash "$root/tests/python/ensure-venv.sh" "$here/requirements.txt" "$root/target/deploy-venv")"
export MCPGATE_BIN="${MCPGATE_BIN:-$root/target/debug/mcpgate}"
if [ ! -x "$MCPGATE_BIN" ]; then
  echo "tests/deploy: $MCPGATE_BIN is missing; build it first (cargo build -p mcpgate)" >&2
  exit 1
fi
cd "$here"
if [ $# -eq 0 ]; then set -- test_deploy; else set -- "${@/#/test_deploy.}"; fi
exec "$python" -m unittest -v "$@"
