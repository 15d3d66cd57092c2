"""Instructions per request on the JWT + tool policy route, counted by callgrind (deterministic:
the machine's noise does not move it, so a refactor or a hot-path change can be judged exactly).

The gateway runs under `valgrind --tool=callgrind` twice, once serving FEW and once MANY
identical keep-alive POSTs (tools/call, one cached RS256 token) to the static nginx upstream of
bench.py; the difference of the two counts divided by MANY − FEW is the cost of one request
without start-up, JWKS loading and shutdown. Two counts are reported: the inclusive cost of
pingora's per-connection request loop (`process_new_http`: pingora plus every mcpgate hook, and
nothing else — background timers scale with wall time and would add noise), and of mcpgate's
`request_filter` alone. SHA-256 of the token is not counted fairly (callgrind cannot emulate the
CPU's SHA extensions), which is the same before and after any change.

usage: python3 tests/bench/callgrind.py [path/to/mcpgate ...]   (default: target/release/mcpgate)
Several binaries are measured in one run, side by side (e.g. a baseline build and the current one).
The bare pingora proxy (target/release/bare-pingora, built by run.sh) is measured in the same run
when present: its request path is the framework's cost, and mcpgate's minus it is mcpgate's own.
Needs what tests/bench/run.sh installs (nginx, node, openssl) and valgrind.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from pathlib import Path

import bench

FEW, MANY = 200, 1200
ROUTE = "/policy/mcp"


def post_many(port: int, token: str, n: int, route: str = ROUTE) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    for _ in range(n):
        conn.request("POST", route, body=bench.CALL_BODY, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"gateway answered {resp.status}")
    conn.close()


COUNTED = {
    "request path": re.compile(r"HttpProxy<SV,C> as pingora_core::apps::HttpServerApp>::process_new_http::\{\{closure\}\}"),
    "request_filter": re.compile(r"mcpgate_proxy::.*as pingora_proxy::proxy_trait::ProxyHttp>::request_filter::\{\{closure\}\}"),
}


def inclusive(out: Path) -> dict[str, int]:
    """Inclusive instruction counts of the COUNTED functions in one callgrind output."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
                          capture_output=True, text=True, check=True).stdout
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s", line)
        for name, pattern in COUNTED.items():
            if m and name not in found and pattern.search(line):
                found[name] = int(m.group(1).replace(",", ""))
    return found


def instructions(binary: Path, config: Path, ports: bench.Ports, token: str, n: int) -> dict[str, int]:
    out = bench.OUT / f"callgrind.{binary.parent.name}.{n}.out"
    g = bench.start(f"callgrind-{n}", ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                       binary, "run", "--config", config])
    admin = ports["other"]["admin"]
    bench.wait_ready(f"http://127.0.0.1:{admin}/readyz", g, timeout=300)
    post_many(ports["gateway"]["plain"], token, n)
    bench.stop_all_of([g])
    counts = inclusive(out)
    if set(counts) != set(COUNTED):
        raise RuntimeError(f"{out}: found only {sorted(counts)}")
    return counts


def bare_instructions(ports: bench.Ports, n: int) -> int:
    """The bare pingora proxy's request path for `n` POSTs (its token is ignored: no hooks)."""
    out = bench.OUT / f"callgrind.bare-pingora.{n}.out"
    cert, key = bench.make_cert()
    bare = ports["pingora"]
    b = bench.start(f"callgrind-bare-{n}", ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                            bench.BARE_PINGORA, f"127.0.0.1:{bare['plain']}", f"127.0.0.1:{bare['tls']}",
                                            cert, key, f"127.0.0.1:{ports['direct']['plain']}"])
    bench.wait_port(bare["plain"], b, "bare pingora under valgrind")
    post_many(bare["plain"], "-", n, "/mcp")
    bench.stop_all_of([b])
    counts = inclusive(out)
    if "request path" not in counts:
        raise RuntimeError(f"{out}: no request path found")
    return counts["request path"]


def main() -> int:
    binaries = [Path(a).resolve() for a in sys.argv[1:]] or [bench.MCPGATE]
    bench.OUT.mkdir(exist_ok=True)
    ports = bench.allocate_ports()
    try:
        bench.start_servers(ports, gateway=False)
        config = bench.write_gateway(ports, *bench.make_cert())
        token = (bench.OUT / "tokens-RS256.txt").read_text().split()[0]
        results: list[tuple[Path, float]] = []
        for binary in binaries:
            few = instructions(binary, config, ports, token, FEW)
            many = instructions(binary, config, ports, token, MANY)
            per = {k: (many[k] - few[k]) / (MANY - FEW) for k in COUNTED}
            print(f"{binary}: " + ", ".join(f"{k} {v:,.0f}" for k, v in per.items())
                  + " instructions per request (JWT + tool policy, HTTP/1.1 keep-alive)")
            results.append((binary, per["request path"]))
        if bench.BARE_PINGORA.exists():
            bare = (bare_instructions(ports, MANY) - bare_instructions(ports, FEW)) / (MANY - FEW)
            print(f"{bench.BARE_PINGORA}: request path {bare:,.0f} instructions per request (no hooks)")
            for binary, path in results:
                print(f"{binary}: mcpgate's own work {path - bare:,.0f} instructions per request "
                      f"({path / bare:.2f}× bare pingora)")
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
