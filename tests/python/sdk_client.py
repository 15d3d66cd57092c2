"""A real MCP client (the official Python SDK) driving the gateway: initialize, list tools, call
an allowed tool, then try a tool the token may not use. Prints one JSON summary line for the
Rust end-to-end test (tests/e2e/policy.rs) to assert on.

usage: sdk_client.py URL TOKEN ALLOWED_TOOL DENIED_TOOL
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main(url: str, token: str, allowed: str, denied: str) -> dict:
    out: dict = {}
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                out["server"] = init.server_info.name
                out["protocol"] = init.protocol_version
                tools = await session.list_tools()
                out["tools"] = sorted(t.name for t in tools.tools)
                result = await session.call_tool(allowed, {"text": "from the python sdk"})
                out["allowed_is_error"] = bool(result.is_error)
                out["allowed_text"] = " ".join(getattr(c, "text", "") for c in result.content)
                try:
                    denied_result = await session.call_tool(denied, {})
                    out["denied"] = "returned" if not denied_result.is_error else "tool_error"
                except Exception as e:  # the gateway's 403 surfaces as an error
                    out["denied"] = "refused"
                    out["denied_error"] = f"{type(e).__name__}: {e}"
    return out


if __name__ == "__main__":
    summary = asyncio.run(main(*sys.argv[1:5]))
    print(json.dumps(summary))
