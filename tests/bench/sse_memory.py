"""What an idle SSE stream costs the gateway, and who holds it (issue 16, target 4).

usage: python3 tests/bench/sse_memory.py [--steps 2000,4000] [--profile] [path/to/mcpgate ...]
       (default binary: target/release/mcpgate)

Each binary in turn serves one `auth: none` route to `sse_hold.mjs server` (an upstream whose SSE
streams stay open and silent); `sse_hold.mjs client` opens streams through it in cumulative steps,
and the gateway's RSS after each step gives KiB per stream for that step (binaries side by side
in one run: compare them, not runs). --profile also runs the first binary under valgrind's DHAT
at 500 and 1,500 streams and prints the heap bytes per stream by allocation site (the difference
of the two runs at their heap peaks): the profile docs/benchmarks.md cites. DHAT cannot see
mimalloc, mcpgate's allocator, by itself, so tests/bench/vgmi.c (built here with gcc) sends it
to libc malloc under valgrind.
Needs node (tests/bench/run.sh installs it); --profile needs valgrind and gcc. Loopback only;
every process it starts is stopped before it exits.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import bench

PROFILE_STEPS = (500, 1500)
# Frames that are the allocator or generic containers, not who holds the memory.
PLUMBING = re.compile(r"^(malloc|calloc|realloc|memalign|posix_memalign|mi_|_vgr|alloc::|__rust|<alloc::|core::|"
                      r"hashbrown|bytes::|std::|<T as alloc|<bytes::)")


def gateway_config(port: int, admin: int, upstream: int) -> Path:
    path = bench.OUT / "sse-memory.yaml"
    path.write_text(f"""public_url: http://127.0.0.1:{port}
listeners: [{{ bind: "127.0.0.1:{port}" }}]
admin: {{ bind: "127.0.0.1:{admin}" }}
logging: {{ level: warn, access_log: false }}
routes:
  - {{ name: idle-sse, path: /sse/mcp, upstream: {{ url: "http://127.0.0.1:{upstream}/mcp" }}, auth: none }}
""")
    return path


def open_streams(port: int, n: int) -> int:
    """Open `n` more idle streams (held until the run ends); how many opened."""
    name = f"sse-client-{len(bench.PROCS)}"
    client = bench.start(name, ["node", bench.HERE / "sse_hold.mjs", "client", f"http://127.0.0.1:{port}/sse/mcp", n])
    log = bench.OUT / f"{name}.log"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        words = log.read_text().split()  # "ready N failed M" once every stream answered or failed
        if len(words) >= 4 and words[0] == "ready":
            return int(words[1])
        if client.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"the SSE client did not report; see {log}")


def hold(cmd: list, steps: list[int], env: dict | None = None) -> list[tuple[int, int]]:
    """Start the gateway (`cmd`), open streams in cumulative `steps`; (streams, RSS KiB) after each."""
    port, admin, upstream = bench.free_port(), bench.free_port(), bench.free_port()
    procs_before = len(bench.PROCS)
    try:
        up = bench.start("sse-upstream", ["node", bench.HERE / "sse_hold.mjs", "server", upstream])
        bench.wait_port(upstream, up, "SSE upstream")
        gw = bench.start("sse-gateway", cmd + ["run", "--config", gateway_config(port, admin, upstream)], env)
        bench.wait_ready(f"http://127.0.0.1:{admin}/readyz", gw, timeout=300)
        rows, total = [(0, settled_rss(gw.pid))], 0
        for target in steps:
            total += open_streams(port, target - total)
            rows.append((total, settled_rss(gw.pid)))
        return rows
    finally:
        bench.stop_all_of(bench.PROCS[procs_before:])


def settled_rss(pid: int) -> int:
    """RSS once it stops moving (streams just opened are still settling): read every 0.5 s until
    two readings agree within 0.1 %, at most 20 s."""
    last = bench.rss_kib(pid)
    for _ in range(40):
        time.sleep(0.5)
        now = bench.rss_kib(pid)
        if abs(now - last) <= last / 1000:
            return now
        last = now
    return last


def per_stream(rows: list[tuple[int, int]]) -> list[str]:
    return [f"{a}→{b} streams: {(rb - ra) / (b - a):.1f} KiB per stream" for (a, ra), (b, rb) in zip(rows, rows[1:])]


def shim() -> Path:
    lib = bench.OUT / "vgmi.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", lib, bench.HERE / "vgmi.c"], check=True)
    return lib


def heap_by_site(path: Path) -> dict[str, int]:
    """DHAT's bytes live at the heap peak, by the first frame that is not allocator plumbing."""
    doc = json.loads(path.read_text())
    sites: dict[str, int] = defaultdict(int)
    for pp in doc["pps"]:
        frames = [re.sub(r"^0x[0-9A-F]+: | \(in /.*\)$", "", doc["ftbl"][i]) for i in pp["fs"]]
        owner = next((f for f in frames if not PLUMBING.match(f)), frames[0] if frames else "?")
        sites[owner.split(" (")[0]] += pp["gb"]
    return sites


def profile(binary: Path) -> None:
    lib, runs = shim(), []
    for n in PROFILE_STEPS:
        out = bench.OUT / f"dhat.sse.{n}.json"
        hold(["valgrind", "--tool=dhat", f"--dhat-out-file={out}", binary], [n], {"LD_PRELOAD": str(lib)})
        runs.append(heap_by_site(out))
    few, many = runs
    n = PROFILE_STEPS[1] - PROFILE_STEPS[0]
    rows = sorted(((many.get(k, 0) - few.get(k, 0)) / n, k) for k in set(few) | set(many))[::-1]
    print(f"heap per idle stream by allocation site ({binary}, DHAT at {PROFILE_STEPS[0]} and {PROFILE_STEPS[1]} streams):")
    for bytes_per, site in rows:
        if bytes_per >= 64:
            print(f"  {bytes_per:8,.0f} B  {site[:160]}")
    print(f"  {sum(r[0] for r in rows):8,.0f} B  in all")


def main() -> int:
    args = sys.argv[1:]
    steps = [2000, 4000]
    if "--steps" in args:
        at = args.index("--steps")
        steps = [int(s) for s in args[at + 1].split(",")]
        del args[at:at + 2]
    wants_profile = "--profile" in args
    binaries = [Path(a).resolve() for a in args if a != "--profile"] or [bench.MCPGATE]
    bench.OUT.mkdir(exist_ok=True)
    note = bench.raise_fd_limit()
    if note:
        print(f"note: {note}")
    try:
        for binary in binaries:
            rows = hold([binary], steps)
            print(f"{binary}: RSS {rows[0][1]} KiB idle; " + "; ".join(per_stream(rows)), flush=True)
        if wants_profile:
            profile(binaries[0])
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
