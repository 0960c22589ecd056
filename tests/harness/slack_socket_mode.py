"""A loopback port nothing listens on (a refused connection)."""

from __future__ import annotations

import socket


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
