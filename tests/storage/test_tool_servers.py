"""The store's record of which MCP servers each channel turned on, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime

from storage import Store

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
HERE = ("slack", "T1", "C1")


async def test_servers_are_on_per_channel_until_turned_off(store: Store) -> None:
    choices = store.tool_servers
    assert await choices.enabled_tool_servers(*HERE) == frozenset()
    await choices.enable_tool_server(*HERE, "tickets", "U1", NOW)
    await choices.enable_tool_server(*HERE, "tickets", "U2", NOW)  # already on: one row
    await choices.enable_tool_server(*HERE, "orders", "U1", NOW)
    assert await choices.enabled_tool_servers(*HERE) == {"tickets", "orders"}
    assert await choices.enabled_tool_servers("slack", "T1", "C2") == frozenset()
    assert await choices.enabled_tool_servers("slack", "T2", "C1") == frozenset()
    assert await choices.disable_tool_server(*HERE, "tickets")
    assert not await choices.disable_tool_server(*HERE, "tickets")
    assert await choices.enabled_tool_servers(*HERE) == {"orders"}


async def test_forgetting_a_user_pseudonymizes_who_turned_a_server_on(store: Store) -> None:
    await store.tool_servers.enable_tool_server(*HERE, "tickets", "U1", NOW)
    counts = await store.forget_user("T1", "U1", "forgotten-1")
    assert counts["records pseudonymized"] == 1
    assert await store.tool_servers.enabled_tool_servers(*HERE) == {"tickets"}  # the channel's choice stays
