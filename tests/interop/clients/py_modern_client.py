"""The official Python SDK client speaking MCP 2026-07-28 through the gateway.

usage: py_modern_client.py URL TOKEN  — prints one JSON object: the negotiated protocol, the
tools listed and the cache scope the client was told, and a prompt whose name is not ASCII (the
client sends it Base64-encoded in `Mcp-Name`; the gateway must decode it to compare).
"""

import asyncio
import json
import sys

from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main(url: str, token: str) -> dict:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http:
        async with Client(streamable_http_client(url, http_client=http), mode="auto") as client:
            out: dict = {"protocol": client.session.protocol_version if client.session else None}
            tools = await client.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            out["cache_scope"] = getattr(tools, "cache_scope", None)
            prompt = await client.get_prompt("grüße", {"name": "Ada"})
            out["prompt"] = " ".join(getattr(m.content, "text", "") for m in prompt.messages)
            return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
