#!/usr/bin/env bash
# Install the Debian packages a load run needs, only those whose command is missing.
# usage: install-tools.sh COMMAND:PACKAGE ...   (e.g. nginx:nginx-light wrk:wrk)
# Shared by tests/bench/run.sh, tests/soak/run.sh and .ci/run.
set -euo pipefail
missing=()
for pair in "$@"; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "--- installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
