"""The official Python SDK's legacy HTTP+SSE client, through the gateway.

usage: py_legacy_client.py SSE_URL TOKEN   — prints one JSON object.
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.sse import sse_client


async def main(url: str, token: str) -> dict:
    async with sse_client(url, headers={"Authorization": f"Bearer {token}"}) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            tools = await session.list_tools()
            r = await session.call_tool("echo", {"text": "legacy hello"})
            return {"tools": sorted(t.name for t in tools.tools), "echo": " ".join(getattr(c, "text", "") for c in r.content)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
