"""An MCP server built with the official Python SDK 1.x (FastMCP), for the interop tests.

usage: py1_server.py PORT

Resources `file:///secret/keys` (the gateway denies `file:///secret/*`) and `file:///public/readme`.
SDK 1.x parses `params.uri` as a URL, so every spelling that normalises to the secret's URI
(`..`, `%2e`, scheme case, `file:/`, `localhost`, backslashes, whitespace) reads the secret when
sent to it directly: the interop scenario shows that, then that none of them passes the gateway.
"""

import sys

from mcp.server.fastmcp import FastMCP
from mcp.server.transport_security import TransportSecuritySettings

port = int(sys.argv[1])
security = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=[f"127.0.0.1:{port}"],
    allowed_origins=[],
)
server = FastMCP("interop-python-sdk1", host="127.0.0.1", port=port, transport_security=security)


@server.resource("file:///secret/keys")
def secret_keys() -> str:
    """What the gateway must never hand out."""
    return "TOP-SECRET-KEYS"


@server.resource("file:///public/readme")
def public_readme() -> str:
    """What anyone may read."""
    return "public readme"


server.run("streamable-http")
