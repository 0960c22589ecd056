"""Every MCP tool call is recorded (who, team, channel, server, tool, arguments, approved by, result size,
duration, error), listed by `python -m bot tool-calls`, and /forget pseudonymizes the asker's rows."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.app import open_engine
from bot.cli import main
from bot.mcp.audit import AuditedCalls
from bot.mcp.servers import McpCallFailed, McpLimits, McpServers
from storage import Store, open_store
from tests.fakes.mcp_servers import stdio_server
from tests.harness.messages import message

DAY1 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def ticking() -> Iterator[float]:
    """A monotonic clock that moves 0.25 s between readings: each call lasts 250 ms."""
    now = 0.0
    while True:
        yield now
        now += 0.25


@pytest.fixture
async def servers() -> AsyncIterator[McpServers]:
    manager = McpServers([stdio_server()], McpLimits(result_max_chars=100))
    yield manager
    await manager.close()


def audited(servers: McpServers, store: Store, day: datetime) -> AuditedCalls:
    """Calls recorded a second apart from `day` on, each 250 ms long."""
    tick, seconds = ticking(), iter(range(1_000))
    return AuditedCalls(
        servers, store.tool_servers, lambda: day + timedelta(seconds=next(seconds)), monotonic=lambda: next(tick)
    )


async def test_each_call_is_recorded_with_its_outcome(store: Store, servers: McpServers) -> None:
    calls = audited(servers, store, DAY1)
    ann = message("look it up", user="ann", channel="c1", platform="slack", team="T1")
    assert await calls.call(ann, "team", "lookup_order", {"order_id": "A-7"}, None) == "order A-7: shipped"
    assert await calls.call(ann, "team", "create_ticket", {"title": "printer"}, "ann") == "ticket #1 opened: printer"
    with pytest.raises(McpCallFailed):
        await calls.call(ann, "team", "broken", {}, None)
    await calls.call(ann, "team", "big", {"size": 5000}, None)
    await calls.refused(ann, "team", "create_ticket", {"title": "again"}, "not approved by ann")

    looked, created, broken, big, refused = await store.tool_servers.tool_calls("T1", None)
    assert (looked.platform, looked.team_id, looked.channel_id, looked.user_id) == ("slack", "T1", "c1", "ann")
    assert (looked.server, looked.tool, looked.arguments) == ("team", "lookup_order", '{"order_id": "A-7"}')
    assert (looked.approved_by, looked.result_chars, looked.duration_ms, looked.error) == (None, 18, 250, None)
    assert (looked.called_at, refused.called_at) == (DAY1, DAY1 + timedelta(seconds=4))
    assert (created.approved_by, created.result_chars) == ("ann", len("ticket #1 opened: printer"))
    assert broken.error is not None and "the ticket system is down" in broken.error
    assert big.result_chars == len(servers.capped("x" * 5000))  # what reached the model, not what the server sent
    assert (refused.error, refused.approved_by, refused.result_chars) == ("not approved by ann", None, 0)
    assert await store.tool_servers.tool_calls("T2", None) == []


async def test_since_keeps_the_later_days(store: Store, servers: McpServers) -> None:
    ann = message("x", user="ann")
    await audited(servers, store, DAY1).call(ann, "team", "pid", {}, None)
    await audited(servers, store, DAY2).call(ann, "team", "pid", {}, None)
    assert [c.called_at for c in await store.tool_servers.tool_calls(None, DAY2)] == [DAY2]
    assert len(await store.tool_servers.tool_calls(None, None)) == 2


async def test_forget_keeps_the_call_but_not_who_or_the_arguments(store: Store, servers: McpServers) -> None:
    calls = audited(servers, store, DAY1)
    await calls.call(message("x", user="ann", team="T1"), "team", "create_ticket", {"title": "my address"}, "ann")
    await calls.call(message("x", user="bob", team="T1"), "team", "lookup_order", {"order_id": "B"}, None)
    await store.forget_user("T1", "ann", "forgotten-1")
    forgotten, kept = await store.tool_servers.tool_calls("T1", None)
    assert (forgotten.user_id, forgotten.approved_by, forgotten.arguments) == ("forgotten-1", "forgotten-1", "null")
    assert (forgotten.tool, forgotten.result_chars) == ("create_ticket", len("ticket #1 opened: my address"))
    assert (kept.user_id, kept.arguments) == ("bob", '{"order_id": "B"}')


async def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = await asyncio.to_thread(main, list(argv))  # main() runs its own event loop
    return code, out.getvalue()


async def test_the_cli_lists_calls_as_table_csv_and_json(
    make_settings: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, servers: McpServers
) -> None:
    async with open_engine(make_settings()):
        pass  # the database, migrated
    store = await open_store(db_url)
    try:
        await audited(servers, store, DAY1).call(message("x", user="ann", team="T1"), "team", "pid", {}, None)
        await audited(servers, store, DAY2).call(message("x", user="bob", team="T2"), "team", "broken", {}, None)
    except McpCallFailed:
        pass
    finally:
        await store.close()
    monkeypatch.setenv("DATABASE_URL", db_url)

    code, out = await run_cli("tool-calls", "--format", "json")
    assert code == 0
    ann, bob = json.loads(out)["calls"]
    assert (ann["user_id"], ann["team_id"], ann["tool"], ann["called_at"]) == (
        "ann",
        "T1",
        "pid",
        "2026-12-01T09:00:00+00:00",
    )
    assert bob["error"].startswith("team.broken failed")

    code, out = await run_cli("tool-calls", "--format", "csv", "--team", "T2")
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert (row["user_id"], row["server"], row["tool"], row["duration_ms"]) == ("bob", "team", "broken", "250")

    code, out = await run_cli("tool-calls", "--since", "2026-12-02")
    header, only, total = out.splitlines()
    assert header.split() == [
        "called_at", "platform", "team_id", "channel_id", "user_id", "server", "tool", "arguments", "approved_by",
        "result_chars", "duration_ms", "error",
    ]  # fmt: skip
    assert " bob " in only and total == "1 call"
