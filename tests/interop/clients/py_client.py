"""A full MCP session with the official Python SDK client, through the gateway.

usage: py_client.py URL TOKEN
Prints one JSON object: what the client saw at each step (the orchestrator asserts on it).
"""

import asyncio
import json
import sys
import time

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def text_of(result) -> str:
    parts = getattr(result, "content", None) or getattr(result, "contents", None) or getattr(result, "messages", None) or []
    out = []
    for p in parts:
        inner = getattr(p, "content", p)
        out.append(getattr(inner, "text", "") or "")
    return " ".join(out)


async def main(url: str, token: str) -> dict:
    out: dict = {"steps": []}
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                init = await session.initialize()
                out["protocol"] = init.protocol_version
                out["steps"].append("initialize")
                tools = await session.list_tools()
                out["tools"] = sorted(t.name for t in tools.tools)
                out["steps"].append("tools/list")
                r = await session.call_tool("echo", {"text": "hello from python"})
                out["echo"] = text_of(r)
                out["steps"].append("tools/call")
                r = await session.read_resource("notes://readme")
                out["resource"] = text_of(r)
                out["steps"].append("resources/read")
                r = await session.get_prompt("greet", {"name": "Ada"})
                out["prompt"] = text_of(r)
                out["steps"].append("prompts/get")
                stamps: list[float] = []

                async def progress(p, total, message):
                    stamps.append(time.monotonic())

                start = time.monotonic()
                r = await session.call_tool("count", {"n": 5}, progress_callback=progress)
                end = time.monotonic()
                out["count"] = text_of(r)
                out["progress_offsets"] = [round(s - start, 3) for s in stamps]
                out["count_elapsed"] = round(end - start, 3)
                out["steps"].append("progress")
                try:
                    r = await session.call_tool("write_note", {"text": "x"})
                    out["write"] = "error" if r.is_error else "ok"
                except Exception as e:  # a 403 from the gateway
                    out["write"] = f"refused: {type(e).__name__}"
    out["steps"].append("closed (DELETE sent)")
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
