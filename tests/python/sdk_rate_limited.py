"""What the official Python SDK client makes of a rate-limited tools/call: initialize, call a tool
within the budget, call it again over the budget, then list tools to see whether the session still
works. Prints one JSON summary line for tests/e2e/ratelimit.rs (and docs/configuration.md, which
records what was seen).

usage: sdk_rate_limited.py URL TOKEN TOOL
"""

import asyncio
import json
import sys

import contextlib

from mcp.client.session import ClientSession

try:  # SDK 2.x
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    @contextlib.asynccontextmanager
    async def connect(url: str, token: str):
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http:
            async with streamable_http_client(url, http_client=http) as streams:
                yield streams
except ImportError:  # SDK 1.x (tests/python/requirements-sdk1.txt)
    from mcp.client.streamable_http import streamablehttp_client

    @contextlib.asynccontextmanager
    async def connect(url: str, token: str):
        async with streamablehttp_client(url, headers={"Authorization": f"Bearer {token}"}) as streams:
            yield streams


def is_error(result) -> bool:
    """`is_error` in SDK 2.x, `isError` in 1.x."""
    return bool(getattr(result, "is_error", getattr(result, "isError", False)))


async def main(url: str, token: str, tool: str) -> dict:
    out: dict = {}
    try:
        await session_over_budget(url, token, tool, out)
        out["transport"] = "ok"
    except BaseException as e:  # an SDK whose transport dies raises out of its own context
        out["transport"] = "crashed: " + "; ".join(leaves(e))
    return out


async def session_over_budget(url: str, token: str, tool: str, out: dict) -> None:
    async with connect(url, token) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            first = await session.call_tool(tool, {"text": "within budget"})
            out["first_is_error"] = is_error(first)
            try:
                second = await asyncio.wait_for(session.call_tool(tool, {"text": "over"}), 20)
                out["over"] = "tool_error" if is_error(second) else "result"
                out["over_text"] = " ".join(getattr(c, "text", "") for c in second.content)
            except asyncio.TimeoutError:
                out["over"] = "hung"
            except Exception as e:
                out["over"] = "exception"
                out["over_error"] = f"{type(e).__name__}: {e}"
            try:
                tools = await asyncio.wait_for(session.list_tools(), 20)
                out["after"] = "usable" if tools.tools else "empty"
            except Exception as e:
                out["after"] = f"broken: {type(e).__name__}: {e}"


def leaves(e: BaseException) -> list:
    """The innermost exceptions of an exception group, as `Type: message`."""
    if isinstance(e, BaseExceptionGroup):
        return [leaf for sub in e.exceptions for leaf in leaves(sub)]
    return [f"{type(e).__name__}: {e}"]


if __name__ == "__main__":
    summary = asyncio.run(main(*sys.argv[1:4]))
    print(json.dumps(summary))
