"""Counting what a process sends PostgreSQL: its round trips (socket writes to the server) and the statements
they carry, read from the frontend protocol's messages (so the connection must not use TLS: `sslmode=disable`)."""

from __future__ import annotations

import struct
from asyncio import selector_events
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

_TRANSPORT: Any = selector_events._SelectorSocketTransport  # type: ignore[attr-defined]
_UNTYPED = {196608, 80877103}  # the startup message's protocol version; an SSLRequest: no type byte


@dataclass
class Wire:
    """What was written to the server while tracing: one entry per socket write, and the statements run
    (a simple query's statements one by one, split on '; ')."""

    port: int
    writes: int = 0
    statements: list[str] = field(default_factory=list)
    tracing: bool = False
    _prepared: dict[bytes, str] = field(default_factory=dict)  # statement name -> its text, across the session

    @asynccontextmanager
    async def counting(self) -> AsyncIterator[None]:
        """Count the writes and statements of the block only (from zero)."""
        self.writes, self.tracing = 0, True
        self.statements.clear()
        try:
            yield
        finally:
            self.tracing = False

    def read(self, data: bytes) -> None:
        """One socket write: each message in it."""
        if len(data) >= 8 and struct.unpack("!ii", data[:8])[1] in _UNTYPED:
            return
        bound = b""
        offset = 0
        while offset < len(data):
            kind, length = data[offset : offset + 1], struct.unpack("!i", data[offset + 1 : offset + 5])[0]
            body = data[offset + 5 : offset + 1 + length]
            offset += 1 + length
            if kind == b"P":  # Parse: name, text
                name, text = body.split(b"\0", 2)[:2]
                self._prepared[name] = text.decode()
            elif kind == b"B":  # Bind: portal, statement name
                bound = body.split(b"\0", 2)[1]
            elif kind == b"E" and self.tracing:  # Execute the statement bound
                self.statements.append(self._prepared.get(bound, "?"))
            elif kind == b"Q" and self.tracing:  # a simple query: one or more statements
                self.statements.extend(s.strip() for s in body.rstrip(b"\0").decode().split("; "))


@contextmanager
def wire_to(port: int) -> Iterator[Wire]:
    """Read every write to a server on `port` (the loopback's) while the block runs; count them inside
    `Wire.counting()`. Start it before the pool connects, so it learns each prepared statement's text."""
    wire = Wire(port)
    original = _TRANSPORT.write

    def write(transport: Any, data: Any) -> None:
        peer = transport.get_extra_info("peername")
        if peer is not None and peer[1] == port:
            wire.read(bytes(data))
            wire.writes += wire.tracing
        original(transport, data)

    _TRANSPORT.write = write
    try:
        yield wire
    finally:
        _TRANSPORT.write = original
