"""MCP_SERVERS_FILE: which MCP servers the bot may use, in the format other assistants read.

`{"mcpServers": {"<name>": {"command": "...", "args": [...], "env": {...}} | {"url": "http://…/mcp"}}}`:
a command is started as a child process speaking over stdio; a url is a Streamable HTTP endpoint.
The file is read and checked once, at start; every error names the server and what to fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A server's name becomes the prefix of its tools' function names, which OpenAI limits to [a-zA-Z0-9_-].
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_STDIO_KEYS = {"command", "args", "env"}
_HTTP_KEYS = {"url"}


class McpConfigError(ValueError):
    """MCP_SERVERS_FILE cannot be used; the message names the server and what is wrong."""


@dataclass(frozen=True)
class McpServerConfig:
    """One server: a command to start (stdio) or a Streamable HTTP url."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None

    @property
    def transport(self) -> str:
        """ "stdio" or "http"."""
        return "stdio" if self.command is not None else "http"


def read_servers_file(path: Path) -> tuple[McpServerConfig, ...]:
    """The servers `path` declares, in its order; McpConfigError when the file or an entry is wrong."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise McpConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    return parse_servers(document)


def parse_servers(document: Any) -> tuple[McpServerConfig, ...]:
    """The servers of a parsed `{"mcpServers": {...}}` document."""
    if not isinstance(document, dict) or not isinstance(document.get("mcpServers"), dict):
        raise McpConfigError('must be a JSON object {"mcpServers": {"<name>": {...}}}')
    return tuple(_server(name, entry) for name, entry in document["mcpServers"].items())


def _server(name: str, entry: Any) -> McpServerConfig:
    if not _NAME.match(name):
        raise McpConfigError(f"server {name!r}: a name is 1-32 letters, digits, _ or - (it prefixes its tools' names)")
    if not isinstance(entry, dict):
        raise McpConfigError(f'server {name!r}: must be an object with "command" or "url"')
    if ("command" in entry) == ("url" in entry):
        raise McpConfigError(f'server {name!r}: give either "command" (stdio) or "url" (Streamable HTTP), not both')
    allowed = _STDIO_KEYS if "command" in entry else _HTTP_KEYS
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise McpConfigError(
            f"server {name!r}: unknown keys {', '.join(unknown)}; allowed here: {', '.join(sorted(allowed))}"
        )
    if "url" in entry:
        url = entry["url"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise McpConfigError(
                f'server {name!r}: "url" must be an http:// or https:// URL, e.g. http://localhost:8000/mcp'
            )
        return McpServerConfig(name, url=url)
    command = entry["command"]
    if not isinstance(command, str) or not command.strip():
        raise McpConfigError(f'server {name!r}: "command" must be a non-empty string (the program to start)')
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise McpConfigError(f'server {name!r}: "args" must be a list of strings')
    return McpServerConfig(name, command=command, args=tuple(args), env=_strings(name, "env", entry.get("env", {})))


def _strings(name: str, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise McpConfigError(f'server {name!r}: "{key}" must be an object of strings')
    return dict(value)
