"""An MCP server built with the official Python SDK, for the interop tests.

usage: py_server.py PORT [streamable-http|sse|resumable]

`resumable` is Streamable HTTP with an in-memory event store: answers stream as SSE with event
ids, and a GET with `Last-Event-ID` replays what followed that id (2025-11-25 resumability).

Tools `echo`, `add`, `write_note` (the gateway requires mcp:write for it), `count` (streams
progress notifications over SSE, 200 ms apart); resource `notes://readme`; prompt `greet`.
"""

import itertools
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
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


@server.prompt(name="grüße")
def gruesse(name: str) -> str:
    """A prompt whose name is not ASCII: 2026-07-28 clients send it Base64-encoded in `Mcp-Name`."""
    return f"Grüße, {name}!"


# The gateway rewrites Host to the upstream's address; it is the gateway that guards Origin/Host.
security = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=[f"127.0.0.1:{port}"],
    allowed_origins=[],
)

class MemoryEventStore(EventStore):
    """Every event of every stream, in order, for replay."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []  # (event id, stream id, message or None)
        self.ids = itertools.count(1)

    async def store_event(self, stream_id, message):
        event_id = str(next(self.ids))
        self.events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id, send_callback: EventCallback):
        found = [i for i, (eid, _, _) in enumerate(self.events) if eid == last_event_id]
        if not found:
            return None
        stream_id = self.events[found[0]][1]
        for eid, sid, message in self.events[found[0] + 1 :]:
            if sid == stream_id and message is not None:
                await send_callback(EventMessage(message, eid))
        return stream_id


if transport == "sse":
    server.run("sse", host="127.0.0.1", port=port, transport_security=security)
elif transport == "resumable":
    server.run("streamable-http", host="127.0.0.1", port=port, transport_security=security, event_store=MemoryEventStore())
else:
    server.run("streamable-http", host="127.0.0.1", port=port, transport_security=security)
