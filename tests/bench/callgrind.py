"""Instructions per request on the JWT + tool policy route, counted by callgrind (deterministic:
the machine's noise does not move it, so a refactor or a hot-path change can be judged exactly).

The gateway runs under `valgrind --tool=callgrind` twice, once serving FEW and once MANY
identical keep-alive POSTs (tools/call, one cached RS256 token) to the static nginx upstream of
bench.py; the difference of the two counts divided by MANY − FEW is the cost of one request
without start-up, JWKS loading and shutdown. Three counts are reported: the inclusive cost of
pingora's per-connection request loop (`process_new_http`: pingora plus every mcpgate hook, and
nothing else — background timers scale with wall time and would add noise), of mcpgate's
`request_filter` alone, and of the token's SHA-256 inside it (`TokenDigest::of`). That one is not
counted fairly — callgrind cannot emulate the CPU's SHA extensions, so the `sha2` crate falls back
to its portable code, about 38k instructions for a 0.8 KB token — and is the same before and after
any change; mcpgate's own work is also printed without it.

usage: python3 tests/bench/callgrind.py [--top N] [--general] [path/to/mcpgate ...]   (default: target/release/mcpgate)
Several binaries are measured in one run, side by side (e.g. a baseline build and the current one).
--general also measures each binary with MCPGATE_REQUEST_PATH=general (pingora's general proxy loop
instead of the lean path), so the two request paths are compared in the same run.
--top N also prints, per binary, mcpgate's N costliest functions per request (inclusive): the
profile that says where the next instructions are.
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
    # The connection's task: the request loop plus what pingora-core does around each request on a
    # keep-alive connection — chiefly moving pingora-proxy's per-request future into its box.
    "connection task": re.compile(r"<T as pingora_core::apps::ServerApp>::process_new::\{\{closure\}\}"),
    "request path": re.compile(r"HttpProxy<SV,C> as pingora_core::apps::HttpServerApp>::process_new_http::\{\{closure\}\}"),
    "request_filter": re.compile(r"mcpgate_proxy::.*as pingora_proxy::proxy_trait::ProxyHttp>::request_filter::\{\{closure\}\}"),
    # The token's SHA-256 (the cache key), inside request_filter: reported apart because callgrind
    # runs it without the CPU's SHA extensions, at many times its real cost.
    "token SHA-256": re.compile(r"mcpgate_auth::bearer::TokenDigest::of"),
}


def inclusive(out: Path) -> dict[str, int]:
    """Inclusive instruction counts of every function in one callgrind output, by name."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
                          capture_output=True, text=True, check=True).stdout
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if m:
            found.setdefault(m.group(2), int(m.group(1).replace(",", "")))
    return found


def counted(functions: dict[str, int]) -> dict[str, int]:
    """The COUNTED functions' inclusive counts."""
    found: dict[str, int] = {}
    for name, pattern in COUNTED.items():
        hit = next((n for f, n in functions.items() if pattern.search(f)), None)
        if hit is not None:
            found[name] = hit
    return found


def instructions(binary: Path, config: Path, ports: bench.Ports, token: str, n: int,
                 path: str = "lean") -> dict[str, int]:
    out = bench.OUT / f"callgrind.{binary.parent.name}-{binary.name}.{path}.{n}.out"
    g = bench.start(f"callgrind-{n}", ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                       binary, "run", "--config", config], env={"MCPGATE_REQUEST_PATH": path})
    admin = ports["other"]["admin"]
    bench.wait_ready(f"http://127.0.0.1:{admin}/readyz", g, timeout=300)
    post_many(ports["gateway"]["plain"], token, n)
    bench.stop_all_of([g])
    functions = inclusive(out)
    if set(counted(functions)) != set(COUNTED):
        raise RuntimeError(f"{out}: found only {sorted(counted(functions))}")
    return functions


# mcpgate's hooks as pingora calls them (each `ProxyHttp` method and the future it returns; none
# runs inside another), and the request context's making and dropping.
HOOKS = re.compile(r"mcpgate_proxy::request::McpProxy as pingora_proxy::proxy_trait::ProxyHttp>::\w+"
                   r"|RequestCtx as core::default::Default>::default|drop_in_place<mcpgate_proxy::request::ctx::RequestCtx>")


def per_request(few: dict[str, int], many: dict[str, int]) -> dict[str, float]:
    """Each mcpgate function's inclusive instructions per request."""
    return {f: (many[f] - few.get(f, 0)) / (MANY - FEW) for f in many if "mcpgate_" in f}


def hooks(per: dict[str, float]) -> float:
    """Everything mcpgate's hooks cost per request, their callees included."""
    return sum(v for f, v in per.items() if HOOKS.search(f))


def print_top(per: dict[str, float], n: int) -> None:
    """mcpgate's `n` costliest functions per request, inclusive (callees counted in)."""
    for f, v in sorted(per.items(), key=lambda kv: -kv[1])[:n]:
        print(f"  {v:9,.0f}  {f.split(' [')[0].removeprefix('???:')}")


def bare_instructions(ports: bench.Ports, n: int) -> dict[str, int]:
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
    counts = counted(inclusive(out))
    if "request path" not in counts or "connection task" not in counts:
        raise RuntimeError(f"{out}: no request path found")
    return counts


def main() -> int:
    args = sys.argv[1:]
    top = int(args[args.index("--top") + 1]) if "--top" in args else 0
    if top:
        del args[args.index("--top"):args.index("--top") + 2]
    paths = ["lean", "general"] if "--general" in args else ["lean"]
    args = [a for a in args if a != "--general"]
    binaries = [Path(a).resolve() for a in args] or [bench.MCPGATE]
    bench.OUT.mkdir(exist_ok=True)
    ports = bench.allocate_ports()
    try:
        bench.start_servers(ports, gateway=False)
        config = bench.write_gateway(ports, *bench.make_cert())
        token = (bench.OUT / "tokens-RS256.txt").read_text().split()[0]
        results: list[tuple[str, dict[str, float]]] = []
        for binary in binaries:
            for path in paths:
                few = instructions(binary, config, ports, token, FEW, path)
                many = instructions(binary, config, ports, token, MANY, path)
                few_counted, many_counted = counted(few), counted(many)
                per = {k: (many_counted[k] - few_counted[k]) / (MANY - FEW) for k in COUNTED}
                functions = per_request(few, many)
                name = f"{binary} ({path} path)"
                print(f"{name}: " + ", ".join(f"{k} {v:,.0f}" for k, v in per.items())
                      + f", all hooks {hooks(functions):,.0f} (without the token SHA-256 "
                      f"{hooks(functions) - per['token SHA-256']:,.0f}) instructions per request "
                      "(JWT + tool policy, HTTP/1.1 keep-alive)")
                if top:
                    print_top(functions, top)
                results.append((name, per))
        if bench.BARE_PINGORA.exists():
            few, many = bare_instructions(ports, FEW), bare_instructions(ports, MANY)
            bare = {k: (many[k] - few[k]) / (MANY - FEW) for k in few}
            print(f"{bench.BARE_PINGORA}: request path {bare['request path']:,.0f}, connection task "
                  f"{bare['connection task']:,.0f} instructions per request (no hooks)")
            for name, per in results:
                own = per["request path"] - bare["request path"]
                print(f"{name}: mcpgate's own work {own:,.0f} instructions per request "
                      f"({per['request path'] / bare['request path']:.2f}× bare pingora's request path, "
                      f"{per['connection task'] / bare['connection task']:.2f}× its connection task); "
                      f"without the emulated token SHA-256 {own - per['token SHA-256']:,.0f}")
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
