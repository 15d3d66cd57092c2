"""Instructions per request on the JWT + tool policy route, counted by callgrind (deterministic:
the machine's noise does not move it, so a refactor or a hot-path change can be judged exactly).

The gateway runs under `valgrind --tool=callgrind` twice, once serving FEW and once MANY
identical keep-alive POSTs (tools/call, one cached RS256 token) to the static nginx upstream of
bench.py; the difference of the two totals divided by MANY − FEW is the cost of one request
without start-up, JWKS loading and shutdown. SHA-256 of the token is not counted fairly (callgrind
cannot emulate the CPU's SHA extensions), which is the same before and after any change.

usage: python3 tests/bench/callgrind.py [path/to/mcpgate ...]   (default: target/release/mcpgate)
Several binaries are measured in one run, side by side (e.g. a baseline build and the current one).
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


def post_many(port: int, token: str, n: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    for _ in range(n):
        conn.request("POST", ROUTE, body=bench.CALL_BODY, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"gateway answered {resp.status}")
    conn.close()


def instructions(binary: Path, config: Path, ports: bench.Ports, token: str, n: int) -> int:
    out = bench.OUT / f"callgrind.{binary.parent.name}.{n}.out"
    g = bench.start(f"callgrind-{n}", ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                       binary, "run", "--config", config])
    admin = ports["other"]["admin"]
    bench.wait_ready(f"http://127.0.0.1:{admin}/readyz", g, timeout=300)
    post_many(ports["gateway"]["plain"], token, n)
    bench.stop_all_of([g])
    text = out.read_text(errors="replace")
    m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if not m:
        raise RuntimeError(f"no totals in {out}")
    return int(m.group(1))


def main() -> int:
    binaries = [Path(a).resolve() for a in sys.argv[1:]] or [bench.MCPGATE]
    bench.OUT.mkdir(exist_ok=True)
    ports = bench.allocate_ports()
    try:
        bench.start_servers(ports, gateway=False)
        config = bench.write_gateway(ports, *bench.make_cert())
        token = (bench.OUT / "tokens-RS256.txt").read_text().split()[0]
        for binary in binaries:
            few = instructions(binary, config, ports, token, FEW)
            many = instructions(binary, config, ports, token, MANY)
            print(f"{binary}: {(many - few) / (MANY - FEW):,.0f} instructions per request "
                  f"(JWT + tool policy, HTTP/1.1 keep-alive; totals {few:,} at {FEW}, {many:,} at {MANY})")
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
