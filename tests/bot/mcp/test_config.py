"""MCP_SERVERS_FILE is read and checked at start: each mistake is refused with the server's name and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ConfigError
from bot.mcp.config import McpConfigError, McpServerConfig, parse_servers, read_servers_file
from bot.settings import load_settings


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(document), "utf-8")
    return path


def test_stdio_and_http_servers_are_read_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "mcpServers": {
                "tickets": {"command": "npx", "args": ["-y", "tickets-mcp"], "env": {"TICKETS_TOKEN": "t"}},
                "orders": {"url": "http://orders.internal:8000/mcp"},
            }
        },
    )
    tickets, orders = read_servers_file(path)
    assert tickets == McpServerConfig("tickets", command="npx", args=("-y", "tickets-mcp"), env={"TICKETS_TOKEN": "t"})
    assert (tickets.transport, orders.transport) == ("stdio", "http")
    assert orders.url == "http://orders.internal:8000/mcp"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"command": "x", "url": "http://h/mcp"}, r"server 'tickets': give either \"command\" \(stdio\) or \"url\""),
        ({}, r"server 'tickets': give either \"command\""),
        ({"command": ""}, r"server 'tickets': \"command\" must be a non-empty string"),
        ({"command": "x", "args": "-y"}, r"server 'tickets': \"args\" must be a list of strings"),
        ({"command": "x", "env": {"A": 1}}, r"server 'tickets': \"env\" must be an object of strings"),
        ({"url": "ftp://h/mcp"}, r"server 'tickets': \"url\" must be an http:// or https:// URL"),
        ({"url": "http://h/mcp", "headers": {}}, r"server 'tickets': unknown keys headers; allowed here: url"),
        ({"command": "x", "cwd": "/"}, r"server 'tickets': unknown keys cwd; allowed here: args, command, env"),
        ("npx", r"server 'tickets': must be an object with \"command\" or \"url\""),
    ],
)
def test_a_bad_entry_is_refused_naming_the_server(entry: Any, expected: str) -> None:
    with pytest.raises(McpConfigError, match=expected):
        parse_servers({"mcpServers": {"ok": {"command": "y"}, "tickets": entry}})


def test_a_name_that_cannot_prefix_a_function_name_is_refused() -> None:
    with pytest.raises(McpConfigError, match=r"server 'my tools': a name is 1-32 letters, digits, _ or -"):
        parse_servers({"mcpServers": {"my tools": {"command": "x"}}})


@pytest.mark.parametrize("document", [[], {"servers": {}}, {"mcpServers": []}])
def test_a_file_without_mcp_servers_is_refused(document: Any) -> None:
    with pytest.raises(McpConfigError, match=r'must be a JSON object \{"mcpServers"'):
        parse_servers(document)


def test_settings_refuse_a_bad_file_at_start_naming_the_variable_and_server(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcpServers": {"orders": {"url": "orders.internal"}}})
    with pytest.raises(ConfigError, match=r"MCP_SERVERS_FILE: server 'orders': \"url\" must be an http"):
        load_settings(None, openai_api_key="sk-test", mcp_servers_file=path)


def test_settings_refuse_a_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MCP_SERVERS_FILE: cannot read .*nope.json"):
        load_settings(None, openai_api_key="sk-test", mcp_servers_file=tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"mcpServers": {', "utf-8")
    with pytest.raises(ConfigError, match=r"MCP_SERVERS_FILE: .*broken.json is not valid JSON: .* at line 1"):
        load_settings(None, openai_api_key="sk-test", mcp_servers_file=broken)
