"""Soak: a million mixed requests through the real gateway while the identity provider and the
upstream are killed and restarted, on loopback. Passes when nothing was let through, every answer
is one its request class may get (outage answers only for the classes an outage can touch), and the
gateway's memory stays flat.

Classes, each driven by its own wrk process (tests/soak/soak.lua) so every answer is judged against
its own request:
  call    valid JWT, allowed tool             200; 502/504 while the upstream is down
  list    valid JWT, tools/list               200 with delete_everything filtered out; 502/504
  opaque  introspected token, allowed tool    200; 503 while the IdP is down (if not cached); 502/504
  denied  valid JWT, a denied tool            403 — never reaches the upstream
  forged  JWT signed by an unknown key        401 — never reaches the upstream
  hijack  another user's session id           404 — never reaches the upstream

usage: tests/soak/run.sh [--quick]   (installs nginx-light, wrk, node, openssl; builds --release;
       --quick: at least 50,000 requests over 30 s, as CI runs it)
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import bench  # noqa: E402  (the benchmark suite's process and port helpers)

HERE = Path(__file__).resolve().parent
OUT = HERE / ".out"
QUICK = "--quick" in sys.argv
TOTAL = 50_000 if QUICK else 1_000_000
MAX_SECONDS = 120 if QUICK else 900
CONNS = {"call": 6, "list": 2, "opaque": 2, "denied": 2, "forged": 2, "hijack": 2}
ALLOWED = {
    "call": {200, 502, 504},
    "list": {200, 502, 504},
    "opaque": {200, 502, 503, 504},
    "denied": {403},
    "forged": {401},
    "hijack": {404},
}
OUTAGE = {502, 503, 504}
HIDDEN = {"jsonrpc": "2.0", "id": 3, "result": {"tools": [{"name": "echo"}, {"name": "delete_everything"}]}}


def nginx_conf(port: int) -> Path:
    call = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "hi"}]}})
    conf = f"""daemon off;
error_log {OUT / 'nginx.err'} warn;
pid {OUT / 'nginx.pid'};
events {{ worker_connections 4096; }}
worker_processes 1;
http {{
  access_log off;
  keepalive_requests 10000000;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    default_type application/json;
    location = /ok {{ return 200 {bench.nginx_string(call)}; }}
    location = /list {{ return 200 {bench.nginx_string(json.dumps(HIDDEN))}; }}
    location = /sess/init {{ add_header Mcp-Session-Id soak-session always; return 200 {bench.nginx_string(call)}; }}
    location / {{ return 200 'REACHED $uri'; }}
  }}
}}
"""
    p = OUT / "nginx.conf"
    p.write_text(conf)
    return p


def gateway_conf(gw: int, admin: int, up: int, introspection: int) -> Path:
    jwt = "    auth: { issuers: [bench] }\n"
    rules = '    tools:\n      - { match: "delete_*", deny: true }\n'
    conf = f"""public_url: http://127.0.0.1:{gw}
listeners: [{{ bind: "127.0.0.1:{gw}" }}]
admin: {{ bind: "127.0.0.1:{admin}" }}
logging: {{ level: warn, access_log: false }}
issuers:
  - name: bench
    issuer: https://bench.example
    jwks_file: {OUT / 'jwks.json'}
    algorithms: [RS256, ES256]
    audiences: ["{bench.AUDIENCE}"]
  - name: opaque
    issuer: https://opaque.example
    audiences: ["{bench.AUDIENCE}"]
    introspection: {{ endpoint: "http://127.0.0.1:{introspection}/introspect", client_id: soak, client_secret: soak, cache_ttl: 2s, timeout: 1s }}
routes:
  - name: ok
    path: /ok/mcp
    upstream: {{ url: "http://127.0.0.1:{up}/ok", timeouts: {{ connect: 1s, request: 2s }} }}
{jwt}{rules}  - name: list
    path: /list/mcp
    upstream: {{ url: "http://127.0.0.1:{up}/list", timeouts: {{ connect: 1s, request: 2s }} }}
{jwt}{rules}  - name: never
    path: /never/mcp
    upstream: {{ url: "http://127.0.0.1:{up}/never", timeouts: {{ connect: 1s, request: 2s }} }}
{jwt}{rules}  - name: opaque
    path: /opaque/mcp
    upstream: {{ url: "http://127.0.0.1:{up}/ok", timeouts: {{ connect: 1s, request: 2s }} }}
    auth: {{ issuers: [opaque] }}
  - name: sess
    path: /sess/mcp
    upstream: {{ url: "http://127.0.0.1:{up}/sess", timeouts: {{ connect: 1s, request: 2s }} }}
{jwt}"""
    p = OUT / "mcpgate.yaml"
    p.write_text(conf)
    return p


def forged_token() -> str:
    b64 = lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()
    now = int(time.time())
    claims = {"iss": "https://bench.example", "sub": "mallory", "aud": bench.AUDIENCE, "exp": now + 7200, "iat": now - 600,
              "scope": "mcp:read mcp:write"}
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "bench-rs"}
    return f"{b64(header)}.{b64(claims)}." + base64.urlsafe_b64encode(os.urandom(256)).rstrip(b"=").decode()


def open_session(gw: int, owner: str) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{gw}/sess/mcp/init", method="POST",
                                 data=b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}',
                                 headers={"Authorization": f"Bearer {owner}", "Content-Type": "application/json",
                                          "Accept": "application/json, text/event-stream"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers["Mcp-Session-Id"]


def run_class(cls: str, url: str, env: dict, seconds: int, results: dict) -> None:
    cmd = ["wrk", "-t1", f"-c{CONNS[cls]}", f"-d{seconds}s", "--timeout", "5s", "-s", str(HERE / "soak.lua"), url]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env, "SOAK_CLASS": cls},
                         timeout=seconds + 60)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")]
    results[cls] = json.loads(line[-1]) if line else {"class": cls, "failed": out.stdout + out.stderr}


def chaos(stop: threading.Event, up_conf: Path, peers_cmd: list, events: list, procs: dict) -> None:
    """Every few seconds kill the upstream or the IdP with SIGKILL, and restart it 2 s later."""
    turn = 0
    while not stop.wait(6):
        name = "upstream" if turn % 2 == 0 else "idp"
        turn += 1
        p = procs[name]
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        events.append((time.time(), f"killed {name}"))
        if stop.wait(2):
            break
        # A restarted IdP writes its keys and tokens elsewhere: the ones in use stay valid.
        restart = [*peers_cmd[:2], OUT / "idp-restart", *peers_cmd[3:]]
        procs[name] = (bench.start("nginx", ["nginx", "-c", up_conf, "-p", OUT]) if name == "upstream"
                       else bench.start("peers", restart))
        events.append((time.time(), f"restarted {name}"))


def main() -> int:
    (OUT / "idp-restart").mkdir(parents=True, exist_ok=True)
    bench.OUT = OUT
    bench.MCPGATE = Path(os.environ.get("MCPGATE_BIN", bench.MCPGATE))
    ports = {k: bench.free_port() for k in ("gw", "admin", "up", "introspection")}
    procs: dict[str, subprocess.Popen] = {}
    events: list[tuple[float, str]] = []
    results: dict[str, dict] = {}
    rss: list[int] = []
    try:
        peers_cmd = ["node", bench.HERE / "peers.mjs", OUT, "https://bench.example", bench.AUDIENCE, 4,
                     ports["introspection"], 0]
        procs["idp"] = bench.start("peers", peers_cmd)
        bench.wait_port(ports["introspection"], procs["idp"], "IdP")
        up_conf = nginx_conf(ports["up"])
        procs["upstream"] = bench.start("nginx", ["nginx", "-c", up_conf, "-p", OUT])
        bench.wait_port(ports["up"], procs["upstream"], "upstream")
        gw = bench.start("mcpgate", [bench.MCPGATE, "run", "--config", gateway_conf(ports["gw"], ports["admin"], ports["up"], ports["introspection"])])
        bench.wait_ready(f"http://127.0.0.1:{ports['admin']}/readyz", gw)
        tokens = (OUT / "tokens-RS256.txt").read_text().split()
        session = open_session(ports["gw"], tokens[0])
        base = f"http://127.0.0.1:{ports['gw']}"
        plan = {
            "call": (f"{base}/ok/mcp", {"SOAK_TOKEN": tokens[1]}),
            "list": (f"{base}/list/mcp", {"SOAK_TOKEN": tokens[1]}),
            "opaque": (f"{base}/opaque/mcp", {"SOAK_TOKEN": "opaque-soak-token-0001"}),
            "denied": (f"{base}/never/mcp", {"SOAK_TOKEN": tokens[2]}),
            "forged": (f"{base}/never/mcp", {"SOAK_TOKEN": forged_token()}),
            "hijack": (f"{base}/sess/mcp/use", {"SOAK_TOKEN": tokens[3], "SOAK_SESSION": session}),
        }
        # Calibrate: a short run at full speed tells how long TOTAL requests take.
        run_class("call", plan["call"][0], plan["call"][1], 3, results)
        rate = max(results["call"].get("requests", 0) / 3 * (sum(CONNS.values()) / CONNS["call"]) * 0.6, 500)
        # Long enough for the chaos to kill both the IdP and the upstream more than once.
        seconds = int(min(MAX_SECONDS, max(TOTAL / rate + 10, 30)))
        rss.append(bench.rss_kib(gw.pid))
        stop = threading.Event()
        chaos_thread = threading.Thread(target=chaos, args=(stop, up_conf, peers_cmd, events, procs), daemon=True)
        chaos_thread.start()
        workers = [threading.Thread(target=run_class, args=(c, u, e, seconds, results)) for c, (u, e) in plan.items()]
        for w in workers:
            w.start()
        while any(w.is_alive() for w in workers):
            time.sleep(1)
            rss.append(bench.rss_kib(gw.pid))
        stop.set()
        chaos_thread.join()
        rss.append(bench.rss_kib(gw.pid))
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        bench.stop_all()
    return report(results, events, rss)


def report(results: dict, events: list, rss: list[int]) -> int:
    problems = []
    total = 0
    for cls, r in sorted(results.items()):
        if "failed" in r:
            problems.append(f"{cls}: wrk failed: {r['failed'][:300]}")
            continue
        total += r["requests"]
        statuses = {int(s): n for s, n in r["statuses"].items()}
        unexpected = {s: n for s, n in statuses.items() if s not in ALLOWED[cls]}
        outage = sum(n for s, n in statuses.items() if s in OUTAGE)
        print(f"{cls:7} {r['requests']:>9,} requests  statuses {dict(sorted(statuses.items()))}  "
              f"outage answers {outage:,}  transport errors {r['errors']}  let through {r['leaks']}")
        if r["leaks"]:
            problems.append(f"{cls}: {r['leaks']} answers let through what the gateway must stop")
        if unexpected:
            problems.append(f"{cls}: unexpected statuses {unexpected}")
    kills = sum(1 for _, e in events if e.startswith("killed"))
    warm = rss[len(rss) // 10] if len(rss) > 10 else rss[0]
    print(f"total {total:,} requests; {kills} kills of the IdP or the upstream; gateway RSS "
          f"{rss[0]:,} KiB at start, {warm:,} after warm-up, {max(rss):,} peak, {rss[-1]:,} KiB at the end")
    if total < TOTAL:
        problems.append(f"only {total:,} of {TOTAL:,} requests were sent")
    if rss[-1] > warm * 1.25 + 8192:
        problems.append(f"RSS grew from {warm:,} to {rss[-1]:,} KiB")
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    print("soak passed" if not problems else f"soak failed ({len(problems)} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
