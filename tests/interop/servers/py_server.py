"""An MCP server built with the official Python SDK, for the interop tests.

usage: py_server.py PORT [streamable-http|sse]

Tools `echo`, `add`, `write_note` (the gateway requires mcp:write for it), `count` (streams
progress notifications over SSE, 200 ms apart); resource `notes://readme`; prompt `greet`.
"""

import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

port = int(sys.argv[1])
transport = sys.argv[2] if len(sys.argv) > 2 else "streamable-http"

server = MCPServer("interop-python")
NOTES: list[str] = []


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def write_note(text: str) -> str:
    """Store a note (a 'write' operation for policy tests)."""
    NOTES.append(text)
    return f"stored note {len(NOTES)}"


@server.tool()
async def count(n: int, ctx: Context) -> str:
    """Count to n, reporting progress every 200 ms."""
    for i in range(1, n + 1):
        await ctx.report_progress(i, n, f"step {i}")
        await anyio.sleep(0.2)
    return f"counted to {n}"


@server.resource("notes://readme")
def readme() -> str:
    """The readme."""
    return "interop readme"


@server.prompt()
def greet(name: str) -> str:
    """Greet someone."""
    return f"Hello, {name}!"


# The gateway rewrites Host to the upstream's address; it is the gateway that guards Origin/Host.
security = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=[f"127.0.0.1:{port}"],
    allowed_origins=[],
)

if transport == "sse":
    server.run("sse", host="127.0.0.1", port=port, transport_security=security)
else:
    server.run("streamable-http", host="127.0.0.1", port=port, transport_security=security)
