"""The latency one rate-limit decision adds to a request through the gateway, Redis-backed and in
memory (docs/benchmarks.md, "Rate-limit decisions"). A measurement, not a test: it asserts
nothing about time, only that the rule was applied to every request it timed.

One gateway per store, two `auth: none` routes to the static nginx upstream of bench.py, one with
a rule (`key: ip`, a budget never exhausted) and one without; ROUNDS sequential tools/call POSTs
on each, alternated (after WARMUP rounds), over one keep-alive connection per route, timed at
the client. The difference of the two routes is the decision's cost.

usage: python3 tests/bench/ratelimit.py   (needs a release build, redis-server, and what
tests/bench/run.sh installs: nginx, node, openssl)
"""

from __future__ import annotations

import http.client
import re
import shutil
import sys
import time
import urllib.request

import bench

ROUNDS, WARMUP = 3000, 300
RULE = "bench"


def write_gateway(ports: bench.Ports, store: str) -> bench.Path:
    up, gw, admin = ports["direct"]["plain"], ports["gateway"]["plain"], ports["other"]["admin"]
    cfg = f"""public_url: http://127.0.0.1:{gw}
listeners:
  - bind: 127.0.0.1:{gw}
admin:
  bind: 127.0.0.1:{admin}
logging: {{ level: warn, access_log: false }}
routes:
  - {{ name: limited, path: /mcp, upstream: {{ url: "http://127.0.0.1:{up}/mcp" }}, auth: none }}
  - {{ name: free, path: /free/mcp, upstream: {{ url: "http://127.0.0.1:{up}/mcp" }}, auth: none }}
rate_limits:
  store: {store}
  rules:
    - {{ name: {RULE}, key: ip, routes: [limited], rate: 1000000/s, burst: 1000000 }}
"""
    p = bench.OUT / "ratelimit.yaml"
    p.write_text(cfg)
    return p


def timed_post(conn: http.client.HTTPConnection, path: str) -> float:
    """One POST's round trip in µs, as the client sees it."""
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    started = time.perf_counter()
    conn.request("POST", path, body=bench.CALL_BODY, headers=headers)
    resp = conn.getresponse()
    resp.read()
    elapsed = (time.perf_counter() - started) * 1e6
    if resp.status != 200:
        raise RuntimeError(f"{path}: gateway answered {resp.status}")
    return elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int((len(ordered) - 1) * q)]


def decisions(admin: int) -> int:
    """`mcpgate_rate_limit_decisions_total{rule="bench",decision="allowed"}` from /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    m = re.search(rf'mcpgate_rate_limit_decisions_total{{decision="allowed",rule="{RULE}"}} (\d+)', text)
    return int(m.group(1)) if m else 0


def measure(ports: bench.Ports, store: str) -> None:
    gw, admin = ports["gateway"]["plain"], ports["other"]["admin"]
    g = bench.start(f"ratelimit-{store.split(':')[0]}", [bench.MCPGATE, "run", "--config", write_gateway(ports, store)])
    bench.wait_ready(f"http://127.0.0.1:{admin}/readyz", g)
    conns = {path: http.client.HTTPConnection("127.0.0.1", gw, timeout=30) for path in ("/mcp", "/free/mcp")}
    times: dict[str, list[float]] = {path: [] for path in conns}
    for i in range(WARMUP + ROUNDS):
        for path, conn in conns.items():
            t = timed_post(conn, path)
            if i >= WARMUP:
                times[path].append(t)
    counted = decisions(admin)
    bench.stop_all_of([g])
    if counted != WARMUP + ROUNDS:
        raise RuntimeError(f"store {store}: the rule counted {counted} requests, not {WARMUP + ROUNDS}")
    (l50, l99), (f50, f99) = ((pct(times[p], 0.5), pct(times[p], 0.99)) for p in conns)
    print(f"store {store}: {ROUNDS} requests each; with the rule p50 {l50:.0f} µs p99 {l99:.0f} µs; "
          f"without p50 {f50:.0f} µs p99 {f99:.0f} µs; added p50 {l50 - f50:.0f} µs p99 {l99 - f99:.0f} µs",
          flush=True)


def main() -> int:
    for tool in ("nginx", "node", "openssl", "redis-server"):
        if not shutil.which(tool):
            print(f"missing {tool}: run tests/bench/run.sh (and install redis-server)", file=sys.stderr)
            return 2
    bench.OUT.mkdir(exist_ok=True)
    ports = bench.allocate_ports()
    redis_port = bench.free_port()
    try:
        bench.start_servers(ports, gateway=False)
        redis = bench.start("redis", ["redis-server", "--port", redis_port, "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"])
        bench.wait_port(redis_port, redis, "redis-server")
        for store in (f"redis://127.0.0.1:{redis_port}", "memory"):
            measure(ports, store)
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
