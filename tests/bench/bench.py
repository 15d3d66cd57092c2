"""mcpgate benchmark suite: every variant back to back in one run, on loopback, reported as ratios
against the direct upstream and against nginx.

Started by tests/bench/run.sh (which installs nginx-light and wrk and builds mcpgate --release).
usage: bench.py [--quick] [--write-doc]
  --quick      shorter runs, 16 connections only (a smoke run)
  --write-doc  rewrite the generated section of docs/benchmarks.md and docs/benchmarks.svg
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = HERE / ".out"
MCPGATE = ROOT / "target" / "release" / "mcpgate"
AUDIENCE = "urn:mcpgate:bench"
QUICK = "--quick" in sys.argv
DURATION = 4 if QUICK else 8
WARMUP = 1 if QUICK else 2
CONNS = [16] if QUICK else [1, 16, 64]
UNIQUE_TOKENS = 20_000 if QUICK else 100_000
SSE_STREAMS = 1_000 if QUICK else 10_000

PROCS: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name: str, cmd: list, env: dict | None = None) -> subprocess.Popen:
    log = open(OUT / f"{name}.log", "w")
    p = subprocess.Popen([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True)
    PROCS.append(p)
    return p


def stop_all() -> None:
    for p in PROCS:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in PROCS:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited; see {OUT}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mcpgate exited; see {OUT / 'mcpgate.log'}")
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"mcpgate not ready: {url}")


def nginx_string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tools_list(n: int) -> dict:
    tools = [{"name": f"tool_{i:03}", "description": f"Benchmark tool number {i}, which does nothing in particular.",
              "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}} for i in range(n)]
    return {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}


def write_nginx(up: int, proxy: int) -> tuple[Path, Path]:
    answer = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "hi"}]}})
    listing = json.dumps(tools_list(200))
    static = OUT / "static"
    static.mkdir(exist_ok=True)
    (static / "get-tools.json").write_text(listing)
    (static / "get-tools.sse").write_text(f"event: message\ndata: {listing}\n\n")
    common = "daemon off;\nerror_log {log} warn;\npid {pid};\nevents {{ worker_connections 8192; }}\n"
    # Static files answer POST with 405; `error_page` turns that into a GET of the file (the
    # list answers are too long for an inline `return`).
    def static_post(path: str, file: str, ctype: str) -> str:
        return (f"    location = {path} {{ rewrite ^ /{file}.post last; }}\n"
                f"    location = /{file}.post {{ error_page 405 =200 /get-{file}; return 405; }}\n"
                f"    location = /get-{file} {{ root {static}; default_type {ctype}; }}\n")
    upstream = common.format(log=OUT / "nginx-up.err", pid=OUT / "nginx-up.pid") + f"""worker_processes 1;
http {{
  access_log off;
  keepalive_requests 10000000;
  types {{ }}
  server {{
    listen 127.0.0.1:{up} backlog=4096;
    location = /mcp {{ default_type application/json; return 200 {nginx_string(answer)}; }}
{static_post("/list", "tools.json", "application/json")}{static_post("/listsse", "tools.sse", "text/event-stream")}  }}
}}
"""
    proxy_conf = common.format(log=OUT / "nginx-proxy.err", pid=OUT / "nginx-proxy.pid") + f"""worker_processes auto;
http {{
  access_log off;
  keepalive_requests 10000000;
  upstream up {{ server 127.0.0.1:{up}; keepalive 128; keepalive_requests 10000000; }}
  server {{
    listen 127.0.0.1:{proxy} backlog=4096;
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
"""
    a, b = OUT / "nginx-up.conf", OUT / "nginx-proxy.conf"
    a.write_text(upstream)
    b.write_text(proxy_conf)
    return a, b


def write_gateway(gw: int, admin: int, up: int, intro: int, sse: int) -> Path:
    tools = "    tools:\n      - { match: \"delete_*\", scopes: [mcp:admin] }\n      - { match: \"tool_1*\", scopes: [mcp:admin] }\n      - { match: \"*\", scopes: [mcp:read] }\n"
    jwt = "    auth: { issuers: [bench] }\n"
    cfg = f"""public_url: http://127.0.0.1:{gw}
listeners: [{{ bind: "127.0.0.1:{gw}" }}]
admin: {{ bind: "127.0.0.1:{admin}" }}
logging: {{ level: warn, access_log: false }}
issuers:
  - name: bench
    issuer: https://bench.example
    jwks_file: {OUT / 'jwks.json'}
    algorithms: [RS256, ES256]
    audiences: ["{AUDIENCE}"]
  - name: opaque
    issuer: https://opaque.example
    audiences: ["{AUDIENCE}"]
    introspection: {{ endpoint: "http://127.0.0.1:{intro}/introspect", client_id: bench, client_secret: bench }}
routes:
  - {{ name: none, path: /none/mcp, upstream: {{ url: "http://127.0.0.1:{up}/mcp" }}, auth: none }}
  - {{ name: idle-sse, path: /sse/mcp, upstream: {{ url: "http://127.0.0.1:{sse}/mcp" }}, auth: none }}
  - name: jwt
    path: /jwt/mcp
    upstream: {{ url: "http://127.0.0.1:{up}/mcp" }}
{jwt}  - name: policy
    path: /policy/mcp
    upstream: {{ url: "http://127.0.0.1:{up}/mcp" }}
{jwt}{tools}  - name: introspection
    path: /introspect/mcp
    upstream: {{ url: "http://127.0.0.1:{up}/mcp" }}
    auth: {{ issuers: [opaque] }}
  - name: list
    path: /list/mcp
    upstream: {{ url: "http://127.0.0.1:{up}/list" }}
{jwt}{tools}  - name: listsse
    path: /listsse/mcp
    upstream: {{ url: "http://127.0.0.1:{up}/listsse" }}
{jwt}{tools}"""
    p = OUT / "mcpgate.yaml"
    p.write_text(cfg)
    return p


def wrk(url: str, conns: int, duration: int, tokens: Path | None = None, body: str | None = None, unique: bool = False) -> dict:
    env = {**os.environ, "BENCH_TOKENS": str(tokens or ""), "BENCH_UNIQUE": "1" if unique else "0"}
    if body:
        env["BENCH_BODY"] = body
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s", str(HERE / "post.lua"), url]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if not line:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    return json.loads(line[-1])


def fd_limit() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for tool in ("nginx", "wrk", "node"):
        if not shutil.which(tool):
            print(f"missing {tool}: run tests/bench/run.sh", file=sys.stderr)
            return 2
    up, proxy, gw, admin, intro, sse = (free_port() for _ in range(6))
    results: list[dict] = []
    try:
        peers = start("peers", ["node", HERE / "peers.mjs", OUT, "https://bench.example", AUDIENCE, 2000, intro, UNIQUE_TOKENS])
        wait_port(intro, peers, "token/introspection peer")
        up_conf, proxy_conf = write_nginx(up, proxy)
        n_up = start("nginx-up", ["nginx", "-c", up_conf, "-p", OUT])
        n_proxy = start("nginx-proxy", ["nginx", "-c", proxy_conf, "-p", OUT])
        wait_port(up, n_up, "upstream nginx")
        wait_port(proxy, n_proxy, "proxy nginx")
        g = start("mcpgate", [MCPGATE, "run", "--config", write_gateway(gw, admin, up, intro, sse)])
        wait_port(gw, g, "mcpgate")
        wait_ready(f"http://127.0.0.1:{admin}/readyz", g)
        rs = OUT / "tokens-RS256.txt"
        es = OUT / "tokens-ES256.txt"
        opaque = OUT / "opaque.txt"
        opaque.write_text("opaque-benchmark-token-0001\n")
        list_body = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
        variants = [
            ("direct", "1. direct to upstream", f"http://127.0.0.1:{up}/mcp", None, None),
            ("nginx", "2. nginx reverse proxy, no auth", f"http://127.0.0.1:{proxy}/mcp", None, None),
            ("none", "3. mcpgate, auth: none", f"http://127.0.0.1:{gw}/none/mcp", None, None),
            ("jwt-rs256", "4. mcpgate, JWT RS256 (cached)", f"http://127.0.0.1:{gw}/jwt/mcp", rs, None),
            ("jwt-es256", "4. mcpgate, JWT ES256 (cached)", f"http://127.0.0.1:{gw}/jwt/mcp", es, None),
            ("policy", "5. mcpgate, JWT + tool policy", f"http://127.0.0.1:{gw}/policy/mcp", rs, None),
            ("introspection", "6. mcpgate, introspection (cached)", f"http://127.0.0.1:{gw}/introspect/mcp", opaque, None),
        ]
        for conns in CONNS:
            for key, title, url, tokens, body in variants:
                wrk(url, conns, WARMUP, tokens, body)
                r = wrk(url, conns, DURATION, tokens, body)
                r.update(variant=key, title=title, conns=conns)
                results.append(r)
                print(f"{title:40} c={conns:<3} {r['rps']:>10.0f} req/s  p50 {r['p50_us']:>6} µs  p99 {r['p99_us']:>6} µs  p99.9 {r['p999_us']:>6} µs  errors {r['errors']}", flush=True)
        for key, title, url in [
            ("list-direct", "7. tools/list (200 tools), direct", f"http://127.0.0.1:{up}/list"),
            ("list-json", "7. tools/list filtered, JSON", f"http://127.0.0.1:{gw}/list/mcp"),
            ("list-sse-direct", "7. tools/list (200 tools) SSE, direct", f"http://127.0.0.1:{up}/listsse"),
            ("list-sse", "7. tools/list filtered, SSE", f"http://127.0.0.1:{gw}/listsse/mcp"),
        ]:
            tokens = None if key.endswith("direct") else rs
            wrk(url, 16, WARMUP, tokens, list_body)
            r = wrk(url, 16, DURATION, tokens, list_body)
            r.update(variant=key, title=title, conns=16)
            results.append(r)
            print(f"{title:40} c=16  {r['rps']:>10.0f} req/s  p99 {r['p99_us']:>6} µs  errors {r['errors']}", flush=True)
        # Cache-miss path: every request a never-seen ES256 token.
        rss_before = rss_kib(g.pid)
        uniq = OUT / "tokens-unique.txt"
        r = wrk(f"http://127.0.0.1:{gw}/jwt/mcp", 16, DURATION, uniq, None, unique=True)
        r.update(variant="unique-es256", title="mcpgate, JWT ES256, every token new", conns=16)
        results.append(r)
        print(f"{r['title']:40} c=16  {r['rps']:>10.0f} req/s  p99 {r['p99_us']:>6} µs  errors {r['errors']}", flush=True)
        results.append({"variant": "rss", "before_kib": rss_before, "after_kib": rss_kib(g.pid)})
        # Memory over many requests: RSS before and after a long run (about 1M requests).
        before = rss_kib(g.pid)
        r = wrk(f"http://127.0.0.1:{gw}/jwt/mcp", 16, 10 if QUICK else 40, rs)
        results.append({"variant": "rss-long", "requests": r["requests"], "before_kib": before, "after_kib": rss_kib(g.pid)})
        print(f"RSS over {r['requests']} requests: {before} → {rss_kib(g.pid)} KiB", flush=True)
        # Idle SSE streams held through the gateway (each needs two descriptors in the gateway;
        # the count stays under this machine's per-process descriptor limit).
        streams = min(SSE_STREAMS, max(100, (fd_limit() - 500) // 2))
        ss = start("sse-upstream", ["node", HERE / "sse_hold.mjs", "server", sse])
        wait_port(sse, ss, "SSE upstream")
        base = rss_kib(g.pid)
        client = subprocess.Popen(["node", HERE / "sse_hold.mjs", "client", f"http://127.0.0.1:{gw}/sse/mcp", str(streams)],
                                  stdout=subprocess.PIPE, text=True, start_new_session=True)
        PROCS.append(client)
        import select

        ready, _, _ = select.select([client.stdout], [], [], 120)
        line = client.stdout.readline().split() if ready else []
        opened = int(line[1]) if len(line) > 1 else 0
        time.sleep(1)
        held = rss_kib(g.pid)
        results.append({"variant": "sse-idle", "streams": opened, "before_kib": base, "after_kib": held})
        print(f"{opened} idle SSE streams: RSS {base} → {held} KiB ({(held - base) / max(opened, 1):.1f} KiB per stream)", flush=True)
    finally:
        stop_all()
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    if "--write-doc" in sys.argv:
        write_doc(results)
    bad = [r for r in results if r.get("errors")]
    if bad:
        print(f"{len(bad)} runs had errors: {[(r['variant'], r['conns'], r['errors']) for r in bad]}", file=sys.stderr)
        return 1
    return 0


def find(results: list[dict], variant: str, conns: int) -> dict | None:
    return next((r for r in results if r.get("variant") == variant and r.get("conns") == conns), None)


def write_doc(results: list[dict]) -> None:
    lines = [
        "<!-- generated by tests/bench/run.sh --write-doc: do not edit by hand -->",
        f"Run on {time.strftime('%Y-%m-%d')}: {os.cpu_count()} vCPU ({platform.processor() or platform.machine()}), "
        f"{'quick mode, ' if QUICK else ''}wrk 1 thread, {DURATION} s per run after a {WARMUP} s warm-up, HTTP/1.1 without TLS, "
        "small tools/call POST; gateway, load generator and upstream (nginx, 1 worker) share the machine.",
        "",
        "| variant | conns | req/s | × direct | × nginx | p50 µs | p99 µs | p99.9 µs | added p99 vs direct µs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "conns" not in r or r["variant"].startswith("list") or r["variant"].startswith("unique"):
            continue
        d = find(results, "direct", r["conns"])
        n = find(results, "nginx", r["conns"])
        lines.append(
            f"| {r['title']} | {r['conns']} | {r['rps']:.0f} | {r['rps'] / d['rps']:.2f} | {r['rps'] / n['rps']:.2f} | "
            f"{r['p50_us']} | {r['p99_us']} | {r['p999_us']} | {r['p99_us'] - d['p99_us']} |"
        )
    lines += ["", "| list answers (16 connections) | req/s | × its direct | p99 µs |", "|---|---|---|---|"]
    for key, base in [("list-json", "list-direct"), ("list-sse", "list-sse-direct")]:
        r, b = find(results, key, 16), find(results, base, 16)
        for x in (b, r):
            lines.append(f"| {x['title']} | {x['rps']:.0f} | {x['rps'] / b['rps']:.2f} | {x['p99_us']} |")
    u = find(results, "unique-es256", 16)
    j = find(results, "jwt-es256", 16)
    if u and j:
        lines += ["", f"Cache-miss path (every request a never-seen ES256 token, 16 connections): {u['rps']:.0f} req/s, "
                  f"p99 {u['p99_us']} µs — {u['rps'] / j['rps']:.2f}× the cached-token rate."]
    rss = next((r for r in results if r.get("variant") == "rss"), None)
    if rss:
        lines.append(f"Gateway RSS before the cache-miss run {rss['before_kib']} KiB, after {rss['after_kib']} KiB.")
    long = next((r for r in results if r.get("variant") == "rss-long"), None)
    if long:
        growth = 100.0 * (long["after_kib"] - long["before_kib"]) / long["before_kib"]
        lines.append(f"RSS over {long['requests']:,} more requests (cached JWT): {long['before_kib']} → {long['after_kib']} KiB ({growth:+.1f}%).")
    idle = next((r for r in results if r.get("variant") == "sse-idle"), None)
    if idle:
        per = (idle["after_kib"] - idle["before_kib"]) / max(idle["streams"], 1)
        lines.append(f"{idle['streams']:,} idle SSE streams held through the gateway: RSS {idle['before_kib']} → {idle['after_kib']} KiB, "
                     f"{per:.1f} KiB per stream.")
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    block = f"{start}\n" + "\n".join(lines) + f"\n{end}"
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text += "\n" + block + "\n"
    doc.write_text(text)
    write_svg(results, ROOT / "docs" / "benchmarks.svg")


def write_svg(results: list[dict], path: Path) -> None:
    rows = [r for r in results if r.get("conns") == 16 and not r["variant"].startswith(("list", "unique"))]
    width, bar_h, gap, left = 900, 22, 10, 300
    height = 80 + len(rows) * (bar_h * 2 + gap)
    max_rps = max(r["rps"] for r in rows)
    max_p99 = max(r["p99_us"] for r in rows)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             '<text x="10" y="20" font-size="14" font-weight="bold">Throughput (blue, req/s) and p99 latency (orange, µs) per variant, 16 connections</text>']
    y = 50
    for r in rows:
        w1 = (width - left - 80) * r["rps"] / max_rps
        w2 = (width - left - 80) * r["p99_us"] / max_p99
        parts.append(f'<text x="10" y="{y + bar_h}">{r["title"]}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w1:.0f}" height="{bar_h - 4}" fill="#3b7dd8"/>')
        parts.append(f'<text x="{left + w1 + 5:.0f}" y="{y + bar_h - 8}">{r["rps"]:.0f}</text>')
        parts.append(f'<rect x="{left}" y="{y + bar_h}" width="{w2:.0f}" height="{bar_h - 4}" fill="#e8892c"/>')
        parts.append(f'<text x="{left + w2 + 5:.0f}" y="{y + 2 * bar_h - 8}">{r["p99_us"]} µs</text>')
        y += bar_h * 2 + gap
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    sys.exit(main())
