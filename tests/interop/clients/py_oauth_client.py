"""The official Python SDK's OAuth client (`OAuthClientProvider`) logging in through mcpgate's
front door, knowing nothing but the route's URL.

usage: py_oauth_client.py URL USER MODE [CLIENT_METADATA_URL] [--idp ISSUER]
  MODE cimd: the client's id is CLIENT_METADATA_URL (a Client ID Metadata Document);
       dcr:  the client registers itself (RFC 7591).
  USER is who signs in at the upstream IdP (the redirect handler plays the browser, over HTTP).
  --idp ISSUER: after the tool calls, keep working across a token refresh, then disable USER at
       the IdP (its POST /__disable) and show that access ends.
Prints one JSON object with what the client saw (the orchestrator asserts on it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from pathlib import Path

import anyio
import httpx2 as httpx
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

sys.path.insert(0, str(Path(__file__).resolve().parent))
from login_driver import Browser, Login  # noqa: E402

REDIRECT = "http://127.0.0.1:33418/callback"


class Memory:
    """TokenStorage kept in memory: one login per run."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


def leaf(e: BaseException) -> BaseException:
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return e


def claims(jwt: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))


def text_of(result) -> str:
    return " ".join(getattr(c, "text", "") or "" for c in getattr(result, "content", []) or [])


async def call(session: ClientSession, name: str, args: dict) -> str:
    """`ok: …`, `error: …` (a tool error) or `refused: …` (the gateway said no)."""
    try:
        r = await session.call_tool(name, args)
        return ("error: " if r.is_error else "ok: ") + text_of(r)
    except Exception as e:  # noqa: BLE001 - a 403/401 surfaces as a transport or MCP error
        return f"refused: {type(e).__name__}: {str(e)[:200]}"


async def main(a: argparse.Namespace) -> dict:
    out: dict = {"logins": [], "authorize_requests": []}
    browser = Browser(user=a.user)
    landed: list[Login] = []

    async def redirect_handler(url: str) -> None:
        out["authorize_requests"].append(url)
        try:
            login = await anyio.to_thread.run_sync(browser.login, url, REDIRECT)
        except Exception as e:
            where = getattr(e, "url", "").split("?")[0]
            out["logins"].append({"stopped": getattr(e, "reason", str(e)), "status": getattr(e, "status", None), "at": where})
            raise
        out["logins"].append({"pages": login.pages, "params": sorted(login.params)})
        landed.append(login)
        if "error" in login.params:
            raise RuntimeError(f"authorization refused: {login.params['error']} ({login.params.get('error_description')})")

    async def callback_handler() -> AuthorizationCodeResult:
        p = landed[-1].params
        return AuthorizationCodeResult(code=p["code"], state=p.get("state"), iss=p.get("iss"))

    storage = Memory()
    provider = OAuthClientProvider(
        server_url=a.url,
        client_metadata=OAuthClientMetadata(
            client_name="interop SDK client", redirect_uris=[REDIRECT], grant_types=["authorization_code", "refresh_token"]
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=a.client_metadata_url if a.mode == "cimd" else None,
    )
    http = create_mcp_http_client(auth=provider)
    try:
        async with http:
            async with streamable_http_client(a.url, http_client=http) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await session.initialize()
                    out["client_id"] = storage.client.client_id if storage.client else None
                    first = storage.tokens.access_token
                    c = claims(first)
                    out["token"] = {k: c.get(k) for k in ("iss", "aud", "sub", "email", "groups", "scope", "client_id")}
                    out["refresh_token"] = bool(storage.tokens.refresh_token)
                    out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
                    out["echo"] = await call(session, "echo", {"text": "hello via the front door"})
                    out["write"] = await call(session, "write_note", {"text": "admin note"})
                    out["scope_after_write"] = claims(storage.tokens.access_token).get("scope")
                    if a.idp:
                        await across_refresh_then_disabled(a, session, provider, out)
    except Exception as e:  # noqa: BLE001 - reported, the orchestrator decides
        # A failed login inside a request ends the transport's task group: the cause is the
        # leaf of the group. Raised during a step, it is that step's answer.
        why = f"{type(leaf(e)).__name__}: {str(leaf(e))[:300]}"
        step = out.pop("step", None)
        if step:
            out[step] = f"refused: {why}"
        else:
            out["failed"] = why
    finally:
        browser.close()
    return out


async def wait_past_expiry(provider: OAuthClientProvider) -> None:
    """Until the access token is expired for the gateway (its `exp`) and for the SDK (its clock)."""
    exp = claims(provider.context.current_tokens.access_token)["exp"]
    while time.time() <= max(exp, provider.context.token_expiry_time or 0) + 0.5:
        await asyncio.sleep(0.2)


async def across_refresh_then_disabled(a, session: ClientSession, provider: OAuthClientProvider, out: dict) -> None:
    logins = len(out["logins"])
    before = provider.context.current_tokens.access_token
    await wait_past_expiry(provider)
    out["after_expiry"] = await call(session, "echo", {"text": "after expiry"})
    now = provider.context.current_tokens
    out["refreshed"] = bool(now and now.access_token != before) and len(out["logins"]) == logins
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{a.idp}/__disable", params={"sub": a.user})
        r.raise_for_status()
    await wait_past_expiry(provider)
    out["step"] = "after_disable"
    try:
        out["after_disable"] = await call(session, "echo", {"text": "after disable"})
        del out["step"]
    finally:
        out["logins_after_disable"] = out["logins"][logins:]


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("user")
    p.add_argument("mode", choices=["cimd", "dcr"])
    p.add_argument("client_metadata_url", nargs="?")
    p.add_argument("--idp")
    args = p.parse_args()
    print(json.dumps(asyncio.run(main(args))))
