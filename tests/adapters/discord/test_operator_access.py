"""`python -m bot digests run` posts Discord digests through a brief gateway connection of its own: discord.py's
real client logs in to the fake REST API, connects to the fake gateway, reads and posts as the running bot does."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.discord.adapter import intents
from bot.app import open_engine
from bot.digests import DIGEST_PAYER
from storage.digests import DigestKey, DigestSchedule
from tests.fakes.discord_api import CHANNEL, GUILD, user
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.harness.admin_cli import run_cli
from tests.harness.discord_gateway import TOKEN, discord_for_the_cli
from tests.harness.slack import until
from tests.harness.stores import opened

KEY = DigestKey("discord", GUILD, CHANNEL)
ADA = user("21", "Ada")


async def a_digest_due_a_minute_ago(make_settings: Any) -> None:
    """#general's daily digest, set two days ago, its time a minute past."""
    async with open_engine(make_settings()) as engine:
        now = engine.now()
        due = f"{(now - timedelta(minutes=1)).astimezone(ZoneInfo(engine.settings.quota_timezone)):%H:%M}"
        await engine.store.digests.set(DigestSchedule(KEY, "daily", None, due, "21", now - timedelta(days=2)))


async def digest_spend(db_url: str) -> list[tuple[str, str, int]]:
    async with opened(db_url) as store:
        rows = await store.ledger.usage(GUILD, "2000-01-01", user_id=DIGEST_PAYER)
    return [(row.user_id, row.kind, row.calls) for row in rows]


async def test_run_now_connects_reads_the_channel_posts_once_pinging_nobody_and_disconnects(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    await a_digest_due_a_minute_ago(make_settings)
    fake_openai.enqueue(Reply("Ada ships on Friday [1] @everyone."))
    async with discord_for_the_cli(monkeypatch, fake_openai, db_url) as fakes:
        said = fakes.api.add_history(CHANNEL, datetime.now(UTC) - timedelta(hours=1), "We ship on Friday.", ADA)
        code, out, err = await run_cli("digests", "run", "--now")
        assert code == 0, err
        await until(lambda: fakes.gateway.closed == 1)  # the command closed its websocket
    assert out == "Posted 1 digest.\n"
    [identify] = fakes.gateway.identified
    assert identify["intents"] == intents().value and identify["shard"] == [0, 1] and fakes.gateway.connected == 1
    assert fakes.api.called("GET", f"/channels/{CHANNEL}/messages")  # read as the bot, through its "readers" role
    [posted] = fakes.api.called("POST", f"/channels/{CHANNEL}/messages")
    assert posted.json is not None and posted.json["allowed_mentions"] == {"parse": []}
    assert posted.json["content"].startswith("Digest of this channel since ")
    jump = f"https://discord.com/channels/{GUILD}/{CHANNEL}/{said}"
    assert posted.json["content"].endswith(f"Ada ships on Friday [1]({jump}) @everyone.")
    assert "We ship on Friday." in fake_openai.chat_requests()[0]["messages"][-1]["content"]
    assert await digest_spend(db_url) == [(DIGEST_PAYER, "chat", 1)]


async def test_run_due_posts_what_is_due_once_and_connects_only_when_a_run_waits(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    await a_digest_due_a_minute_ago(make_settings)
    async with open_engine(make_settings()) as engine:  # set now for a time already past today: waits a day
        later = DigestKey("discord", GUILD, "3")
        due = f"{(engine.now() - timedelta(minutes=1)).astimezone(ZoneInfo(engine.settings.quota_timezone)):%H:%M}"
        await engine.store.digests.set(DigestSchedule(later, "daily", None, due, "21", engine.now()))
    fake_openai.enqueue(Reply("Ada ships on Friday [1]."))
    async with discord_for_the_cli(monkeypatch, fake_openai, db_url) as fakes:
        fakes.api.add_history(CHANNEL, datetime.now(UTC) - timedelta(hours=1), "We ship on Friday.", ADA)
        code, out, err = await run_cli("digests", "run", "--due")
        assert (code, out) == (0, "Posted 1 digest.\n"), err
        code, out, err = await run_cli("digests", "run", "--due")
        assert (code, out) == (0, "Posted 0 digests.\n"), err
        await until(lambda: fakes.gateway.closed == 1)
    assert fakes.gateway.connected == 1  # the second pass had nothing due: no IDENTIFY spent on it
    assert len(fakes.api.called("POST", "/messages")) == 1 and len(fake_openai.chat_requests()) == 1


async def test_a_gateway_that_never_gets_ready_ends_the_command_in_its_timeout_with_nothing_posted_or_charged(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    await a_digest_due_a_minute_ago(make_settings)
    async with discord_for_the_cli(monkeypatch, fake_openai, db_url, DISCORD_CONNECT_TIMEOUT="1") as fakes:
        fakes.gateway.ready = False  # HELLO, then silence after IDENTIFY
        code, out, err = await run_cli("digests", "run", "--due")
        await until(lambda: fakes.gateway.closed == fakes.gateway.connected == 1)
    assert code == 1 and out == "Posted 0 digests.\n"
    assert "1 digest on discord not posted: Discord was not ready within 1 seconds" in err
    assert len(fakes.gateway.identified) == 1 and fakes.api.called("POST", "/messages") == []
    assert fake_openai.chat_requests() == [] and await digest_spend(db_url) == []
    async with opened(db_url) as store:
        schedule = await store.digests.get(KEY)
    assert schedule is not None and schedule.last_run is None and schedule.failures == 0  # not claimed: still due


async def test_a_refused_token_is_said_without_the_token_and_nothing_is_posted(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    await a_digest_due_a_minute_ago(make_settings)
    for name in ("bot", "adapters", "discord"):  # the command sets up the root logger's handlers anew
        monkeypatch.setattr(logging.getLogger(name), "handlers", [caplog.handler])
    async with discord_for_the_cli(monkeypatch, fake_openai, db_url) as fakes:
        fakes.api.failures[("GET", "/users/@me")] = [401]
        code, out, err = await run_cli("digests", "run", "--now")
    assert code == 1 and out == "Posted 0 digests.\n"
    assert "1 digest on discord not posted: Discord refused DISCORD_TOKEN" in err
    assert "digests on discord not posted: Discord refused DISCORD_TOKEN" in caplog.text
    assert TOKEN not in out + err + caplog.text
    assert fakes.gateway.connected == 0 and fakes.api.called("POST", "/messages") == []
    assert await digest_spend(db_url) == []
