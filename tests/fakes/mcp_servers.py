"""The team-tools MCP server (mcp_tools_server.py) as the bot's configuration sees it: stdio or Streamable HTTP."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.mcp.config import McpServerConfig

SCRIPT = Path(__file__).with_name("mcp_tools_server.py")


def stdio_server(name: str = "team") -> McpServerConfig:
    """The server started by the bot as a child process."""
    return McpServerConfig(name, command=sys.executable, args=(str(SCRIPT),))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def http_server(name: str = "web") -> AsyncIterator[McpServerConfig]:
    """The server running on its own on 127.0.0.1 (Streamable HTTP), for the length of the block."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "--http", str(port), stderr=asyncio.subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            break
        else:
            raise RuntimeError("the MCP HTTP server did not start listening")
        yield McpServerConfig(name, url=f"http://127.0.0.1:{port}/mcp")
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
