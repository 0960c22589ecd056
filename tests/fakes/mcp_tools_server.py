"""A small team-tools MCP server written with the official SDK, run as a real process by the tests.

`python mcp_tools_server.py` speaks over stdio; `python mcp_tools_server.py --http PORT` serves Streamable HTTP
on 127.0.0.1:PORT/mcp. Its tools cover what the bot must handle: a read-only look-up, an acting tool, a slow
one, one that fails, a large result, and one that kills the server mid-call.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True)
server = MCPServer("team-tools")
_tickets: list[str] = []


@server.tool(annotations=READ_ONLY)
def lookup_order(order_id: str) -> str:
    """Look up an order's status by its id."""
    return f"order {order_id}: shipped"


@server.tool()
def create_ticket(title: str) -> str:
    """Open a support ticket."""
    _tickets.append(title)
    return f"ticket #{len(_tickets)} opened: {title}"


@server.tool(annotations=READ_ONLY)
async def slow(seconds: float) -> str:
    """Answer after a while."""
    await asyncio.sleep(seconds)
    return "done"


@server.tool(annotations=READ_ONLY)
def broken() -> str:
    """Always fails."""
    raise ToolError("the ticket system is down")


@server.tool(annotations=READ_ONLY)
def big(size: int) -> str:
    """A result of `size` characters."""
    return "x" * size


@server.tool(annotations=READ_ONLY)
def crash() -> str:
    """Ends the server's process in the middle of the call."""
    os._exit(3)


@server.tool(annotations=READ_ONLY)
def pid() -> str:
    """The server process's id (tells a restarted server from the first one)."""
    return str(os.getpid())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
