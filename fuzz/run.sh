#!/usr/bin/env bash
# Bounded coverage-guided run of every fuzz target: `fuzz/run.sh [seconds-per-target]` (default
# 20). Fails on the first crash, leaving the reproducer under fuzz/artifacts/<target>/.
# Needs the nightly toolchain (libFuzzer instrumentation); installs cargo-fuzz if missing.
set -euo pipefail

secs="${1:-20}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Build every target once, up front, so the per-target budget is spent fuzzing.
cargo +nightly fuzz build

log="$(mktemp -d)"
trap 'rm -rf "$log"' EXIT
status=0
for t in $(cargo +nightly fuzz list); do
    # Fuzz a scratch copy of the seeds: what the run discovers must not dirty the checkout.
    work="$log/corpus-$t"
    mkdir -p "$work"
    cp "fuzz/corpus/$t/"* "$work/" 2>/dev/null || true
    if cargo +nightly fuzz run "$t" "$work" -- -max_total_time="$secs" -print_final_stats=1 \
        >"$log/$t.log" 2>&1; then
        result=ok
    else
        result=CRASH
        status=1
    fi
    # libFuzzer's last status line ("#N DONE ..." or the line before a crash) names the count.
    execs="$(grep -E '^stat::number_of_executed_units:' "$log/$t.log" | awk '{print $2}' | tail -1 || true)"
    execs="${execs:-$(grep -oE '^#[0-9]+' "$log/$t.log" | tail -1 | tr -d "#" || true)}"
    cov="$(grep -oE 'cov: [0-9]+' "$log/$t.log" | tail -1 | awk "{print \$2}" || true)"
    printf 'fuzz %-18s %-5s execs=%s cov=%s secs=%s\n' "$t" "$result" "${execs:-?}" "${cov:-?}" "$secs"
    if [ "$result" = CRASH ]; then
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log/$t.log" | head -8 >&2 || true
    fi
done
exit "$status"
