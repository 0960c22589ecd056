"""/catchup: since words, who may read what, parts and progress, one reservation for the whole plan."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity, LocalDirectory
from bot.app import open_engine
from bot.catchup import combining_rounds, parse_since
from bot.chat.engine import Engine
from bot.errors import BadCommand
from tests.fakes.openai_server import FakeOpenAI, Reply, ServerError
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message

NOW = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def test_since_words() -> None:
    assert parse_since(None, NOW, BERLIN) == datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
    assert parse_since("30m", NOW, BERLIN) == datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    assert parse_since("2h", NOW, BERLIN) == datetime(2026, 12, 4, 13, 30, tzinfo=UTC)
    assert parse_since("3d", NOW, BERLIN) == datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    assert parse_since("1W", NOW, BERLIN) == datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
    assert parse_since("yesterday", NOW, BERLIN) == datetime(2026, 12, 3, tzinfo=BERLIN)
    assert parse_since("2026-11-30", NOW, BERLIN) == datetime(2026, 11, 30, tzinfo=BERLIN)


@pytest.mark.parametrize("word", ["0m", "soon", "5y", "2026-13-01", "2027-01-01", "-2h"])
def test_a_since_word_that_names_no_past_time_is_refused_with_the_formats(word: str) -> None:
    with pytest.raises(BadCommand, match="30m, 2h, 3d, 1w, yesterday or a date"):
        parse_since(word, NOW, BERLIN)


def test_notes_are_combined_in_rounds_that_each_fit_one_call() -> None:
    assert combining_rounds(1, 14) == []
    assert combining_rounds(3, 14) == [[3]]
    assert combining_rounds(30, 14) == [[10, 10, 10], [3]]


async def console(engine: Engine, lines: str, tmp_path: Path, *, user: str = "ada") -> list[str]:
    out = io.StringIO()
    adapter = ConsoleAdapter(engine, ConsoleIdentity(user_id=user), stdin=io.StringIO(lines), stdout=out,
                             files_dir=tmp_path)  # fmt: skip
    assert await adapter.run() == 0
    return out.getvalue().splitlines()


async def test_console_catchup_summarizes_the_channels_stored_messages(
    engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.enqueue(
        Reply("Noted."), Reply("Sure."), Reply("Ada planned the launch [1] and asked for the date [3].")
    )
    out = await console(engine, "We launch on Friday.\nWhat date is Friday?\n/catchup 2h\n", tmp_path)
    assert out[-1] == "Ada planned the launch and asked for the date."  # no links on the console: markers go
    summary_request = fake_openai.chat_requests()[-1]
    lines = summary_request["messages"][-1]["content"].splitlines()
    assert [line.split(" ", 3)[3] for line in lines] == [
        "ada: We launch on Friday.", "teambot: Noted.", "ada: What date is Friday?", "teambot: Sure.",
    ]  # fmt: skip
    assert lines[0].startswith("[1] ")


async def test_a_long_history_is_summarized_in_parts_then_combined_with_progress(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(max_context_tokens=600, max_output_tokens=100)
    async with open_engine(settings) as engine:
        said = "".join(f"Message number {n} is about topic {n % 7} and nothing else at all.\n" for n in range(40))
        await console(engine, said, tmp_path)
        turns = len(fake_openai.chat_requests())
        responder = RecordingResponder()
        asked = replace(message("/catchup", user="ada", channel="console"),
                        platform_directory=LocalDirectory(engine.stored_messages))  # fmt: skip
        await engine.handle(asked, responder)
    requests = fake_openai.chat_requests()[turns:]
    assert responder.statuses[:2] == ["reading history…", "reading history… 50 messages so far"]  # of 80
    assert all(responder.private_statuses)  # a private catch-up's progress is for the asker alone
    parts = [s for s in responder.statuses if s.startswith("summarizing part")]
    assert len(parts) == 8 and parts[1] == "summarizing part 2 of 8"
    # 8 parts' notes, 3 to a combining call (what fits 500 input tokens with notes of up to 110), then those 3.
    assert [s for s in responder.statuses if s.startswith("combining")] == [
        "combining 8 parts (round 1 of 2)", "combining 3 parts (round 2 of 2)",
    ]  # fmt: skip
    assert len(requests) == 8 + 3 + 1
    assert all(r["max_completion_tokens"] == 100 for r in requests)
    assert "Notes on part 2" in requests[-1]["messages"][-1]["content"]
    text, private = responder.texts[-1]
    assert text.startswith("echo: Notes on part 1:") and private  # the last combining call's reply, privately


async def catchup_in(engine: Engine, text: str, *, channel: str = "console", user: str = "ada") -> RecordingResponder:
    responder = RecordingResponder()
    asked = replace(
        message(text, user=user, channel=channel), platform_directory=LocalDirectory(engine.stored_messages)
    )
    await engine.handle(asked, responder)
    return responder


async def test_a_catchup_whose_whole_plan_does_not_fit_the_budget_is_refused_before_any_call(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    # Bea has spent nothing: one part's worst case ($0.00036) fits her limit; the plan's (8 parts and 4
    # combining calls, $0.0026) does not.
    settings = make_settings(max_context_tokens=600, max_output_tokens=100, quota_user_daily_usd=0.002)
    said = "".join(f"Message {n} is about topic {n % 7} and little else at all.\n" for n in range(40))
    async with open_engine(settings) as engine:
        await console(engine, said, tmp_path)
        turns = len(fake_openai.chat_requests())
        responder = await catchup_in(engine, "/catchup", user="bea")
    assert len(fake_openai.chat_requests()) == turns
    [refusal] = responder.errors  # the wording of every refused model call
    assert refusal.startswith("You've used $0.00 of your $0.002 daily budget; it resets in ")
    assert refusal.endswith("This request needs up to $0.0026348.")
    assert responder.texts == []


async def test_an_excluded_channel_is_never_read_and_public_answers_in_the_open(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(catchup_excluded_channels=" hr , legal")
    async with open_engine(settings) as engine:
        await console(engine, "hello there\n", tmp_path)
        turns = len(fake_openai.chat_requests())
        refused = await catchup_in(engine, "/catchup 1w", channel="hr")
        public = await catchup_in(engine, "/catchup PUBLIC 1w")
        too_many = await catchup_in(engine, "/catchup 1w 2d")
    assert refused.errors == [
        "This channel is not open to catch-ups (an admin listed it in CATCHUP_EXCLUDED_CHANNELS)."
    ]
    assert len(fake_openai.chat_requests()) == turns + 1
    assert public.texts and public.texts[-1][1] is False
    assert too_many.errors[0].startswith("Say one time to catch up from")


async def test_a_part_that_fails_half_way_charges_the_parts_that_ran_and_releases_the_rest(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(max_context_tokens=600, max_output_tokens=100)
    said = "".join(f"Message {n} is about topic {n % 7} and little else at all.\n" for n in range(40))
    async with open_engine(settings) as engine:
        await console(engine, said, tmp_path)
        before = await engine.store.ledger.ledger_rows("local")
        fake_openai.enqueue(Reply("Notes on the first part."), ServerError(500))
        responder = await catchup_in(engine, "/catchup", user="bea")
        after = await engine.store.ledger.ledger_rows("local")
    assert len(fake_openai.chat_requests()) == 40 + 2 and len(responder.errors) == 1 and responder.texts == []
    [(kind, _, cost, state)] = after[len(before) :]  # one row for the whole plan
    first = fake_openai.chat_requests()[40]["messages"]
    assert (kind, state) == ("chat", "settled")
    assert 0 < cost <= 600 * 400 + 100 * 1_600  # one call at most (nanos: $0.40/M in, $1.60/M out), not the plan
    assert first[-1]["content"].startswith("[1] ")


async def test_a_context_too_small_for_two_parts_notes_is_refused_before_any_call(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    async with open_engine(make_settings(max_context_tokens=400, max_output_tokens=150)) as engine:
        await console(engine, "hello there\n", tmp_path)
        responder = await catchup_in(engine, "/catchup")
    assert len(fake_openai.chat_requests()) == 1
    assert responder.errors[0].startswith("Catch-ups need more room than MAX_CONTEXT_TOKENS leaves")


async def test_a_channel_longer_than_the_cap_is_caught_up_on_its_newest_messages_and_says_so(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    # Bea's budget refuses the whole history's plan (the test above); capped at 10 messages, one call fits.
    settings = make_settings(
        max_context_tokens=600, max_output_tokens=100, quota_user_daily_usd=0.002, catchup_max_messages=10
    )
    said = "".join(f"Message {n} is about topic {n % 7} and little else at all.\n" for n in range(40))
    async with open_engine(settings) as engine:
        await console(engine, said, tmp_path)
        turns = len(fake_openai.chat_requests())
        responder = await catchup_in(engine, "/catchup", user="bea")
    assert responder.errors == []
    [request] = fake_openai.chat_requests()[turns:]  # the plan: one part, no call beyond it
    lines = request["messages"][-1]["content"].splitlines()
    # The newest 10 in order (Ada's budget ran out early, so her later messages have no replies).
    assert [line.split(" ", 3)[3] for line in lines] == [
        f"ada: Message {n} is about topic {n % 7} and little else at all." for n in range(30, 40)
    ]
    text, _ = responder.texts[-1]
    assert text.startswith("This covers the latest 10 messages of more than 10 since ")
    assert "(the most a catch-up reads, CATCHUP_MAX_MESSAGES).\necho: " in text


async def test_a_channel_within_the_cap_says_nothing_of_it(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    async with open_engine(make_settings(catchup_max_messages=4)) as engine:
        await console(engine, "one\ntwo\n", tmp_path)  # and the bot's two replies: exactly the cap
        responder = await catchup_in(engine, "/catchup")
    assert len(fake_openai.chat_requests()[-1]["messages"][-1]["content"].splitlines()) == 4
    assert not responder.texts[-1][0].startswith("This covers")
