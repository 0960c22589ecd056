"""Counting what a process sends PostgreSQL: its round trips (each Sync, Flush or simple Query the client sends, a
batch of messages it then waits on the server for) and the statements they carry, read from the frontend protocol's
messages by a loopback proxy between the client and the server. The proxy sees the bytes whatever event loop or
transport the client runs on; the connection must not use TLS (`sslmode=disable`), or there is nothing to read."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

_READ = 65536


@dataclass
class Wire:
    """What clients sent the server through the proxy while tracing: the round trips (Sync, Flush and Query messages)
    and the statements run (a simple query's statements one by one, split on '; ')."""

    port: int  # the proxy's: connect here instead of the server
    writes: int = 0  # round trips
    parses: int = 0  # statements prepared (Parse messages)
    statements: list[str] = field(default_factory=list)
    tracing: bool = False
    _prepared: dict[bytes, str] = field(default_factory=dict)  # statement name -> its text, across the session

    def url(self, url: str) -> str:
        """`url` (the server's) through the proxy."""
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)
        credentials = host[0] + "@" if len(host) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{self.port}"))

    @asynccontextmanager
    async def counting(self) -> AsyncIterator[None]:
        """Count the round trips and statements of the block only (from zero)."""
        self.writes, self.parses, self.tracing = 0, 0, True
        self.statements.clear()
        try:
            yield
        finally:
            self.tracing = False

    def message(self, kind: bytes, body: bytes, bound: list[bytes]) -> None:
        """One frontend message of a connection (`bound`: the statement its last Bind named)."""
        if kind == b"P":  # Parse: name, text
            name, text = body.split(b"\0", 2)[:2]
            self._prepared[name] = text.decode()
            self.parses += self.tracing
        elif kind == b"B":  # Bind: portal, statement name
            bound[0] = body.split(b"\0", 2)[1]
        elif kind == b"E" and self.tracing:  # Execute the statement bound
            self.statements.append(self._prepared.get(bound[0], "?"))
        elif kind == b"Q" and self.tracing:  # a simple query: one or more statements, and a round trip
            self.statements.extend(s.strip() for s in body.rstrip(b"\0").decode().split("; "))
            self.writes += 1
        elif kind in (b"S", b"H") and self.tracing:  # Sync, or Flush (a prepare): the client waits on the server
            self.writes += 1


async def _frontend(wire: Wire, client: asyncio.StreamReader, server: asyncio.StreamWriter) -> None:
    """Pass what the client sends on to the server, reading each message on the way."""
    buffer, bound, started = b"", [b""], False
    while data := await client.read(_READ):
        server.write(data)
        buffer += data
        while True:
            if not started:  # the startup message or an SSLRequest: a length, no type byte
                if len(buffer) < 4 or len(buffer) < (size := struct.unpack("!i", buffer[:4])[0]):
                    break
                version = struct.unpack("!i", buffer[4:8])[0]
                started = version != 80877103  # after an SSLRequest's refusal, the startup message follows
                buffer = buffer[size:]
                continue
            if len(buffer) < 5 or len(buffer) < 1 + (length := struct.unpack("!i", buffer[1:5])[0]):
                break
            wire.message(buffer[:1], buffer[5 : 1 + length], bound)
            buffer = buffer[1 + length :]
        await server.drain()
    server.close()


async def _backend(server: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
    while data := await server.read(_READ):
        client.write(data)
        await client.drain()
    client.close()


@asynccontextmanager
async def wire_to(port: int) -> AsyncIterator[Wire]:
    """A proxy to the server on the loopback's `port`; connect through `wire.url(...)` and count inside
    `Wire.counting()`. Connect after it starts, so it learns each prepared statement's text."""
    tasks: set[asyncio.Task[None]] = set()
    wire = Wire(0)

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        for pump in (_frontend(wire, reader, upstream_writer), _backend(upstream_reader, writer)):
            task = asyncio.create_task(pump)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    proxy = await asyncio.start_server(connected, "127.0.0.1", 0)
    wire.port = proxy.sockets[0].getsockname()[1]
    try:
        yield wire
    finally:
        proxy.close()
        for task in list(tasks):
            task.cancel()
        for task in list(tasks):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
