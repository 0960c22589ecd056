"""Faults outside the bot: a locked database, a full disk, the process killed or stopped mid-reply."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_engine
from bot.billing.prices import PriceTable
from bot.chat.engine import STORE_BUSY, STORE_FAILED
from bot.settings import load_settings
from tests.fakes.openai_server import FakeOpenAI, Reply, count_tokens, prompt_tokens
from tests.fakes.responder import RecordingResponder
from tests.harness.console import REPO, bot_env, run_bot
from tests.harness.conversations import history
from tests.harness.faults import console_streaming
from tests.harness.messages import message


def integrity(db_url: str) -> str:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


async def test_a_database_locked_by_another_writer_gives_a_clear_error_and_loses_nothing(
    make_settings: Any, fake_openai: FakeOpenAI, db_url: str
) -> None:
    settings = make_settings(database_busy_timeout_ms=200)
    async with open_engine(settings) as engine:
        await engine.handle(message("before the lock"), RecordingResponder())
        other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        locked = RecordingResponder()
        await engine.handle(message("during the lock"), locked)
        other.execute("ROLLBACK")
        other.close()
        after = RecordingResponder()
        await engine.handle(message("after the lock"), after)
    assert locked.errors == [STORE_BUSY]
    assert after.replies == ["echo: after the lock"]
    assert await history(settings, message("x").conversation_key) == [
        ("user", "before the lock"), ("assistant", "echo: before the lock"),
        ("user", "after the lock"), ("assistant", "echo: after the lock"),
    ]  # fmt: skip
    assert integrity(db_url) == "ok"


async def test_a_full_disk_gives_a_clear_error_and_corrupts_nothing(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    """A real process whose files may not grow past 256 KB (RLIMIT_FSIZE): writes fail as on a full disk."""
    # Memory off: the background embedder's own writes would take from the same 256 KB at moments
    # the test does not control (they are logged, never shown, when they fail).
    env = {**bot_env(fake_openai, tmp_path), "MEMORY_ENABLED": "false"}
    code, out, _ = await run_bot("console", stdin="kept\n", env=env, cwd=tmp_path)
    assert (code, out) == (0, "echo: kept\n")

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    huge = "lorem ipsum " * 40_000  # ~480 KB: cannot be written
    child_env = {**os.environ, "PYTHONPATH": str(REPO), **env, "MAX_CONTEXT_TOKENS": "400000"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=child_env, cwd=tmp_path, preexec_fn=small_disk,
    )  # fmt: skip
    out_bytes, err_bytes = await asyncio.wait_for(proc.communicate(f"{huge}\nsmall one\n".encode()), timeout=60)
    assert proc.returncode == 0
    assert out_bytes.decode().splitlines() == [f"[error] {STORE_FAILED}", "echo: small one"]
    assert not err_bytes  # the console's log goes to its file
    assert "SQLite: disk I/O error" in (tmp_path / "teambot.log").read_text()  # EFBIG surfaces as an I/O error
    assert integrity(env["DATABASE_URL"]) == "ok"
    settings = load_settings(env_file=None, database_url=env["DATABASE_URL"])
    rows = await history(settings, message("x", channel="console").conversation_key)
    assert [content for _, content in rows] == ["kept", "echo: kept", "small one", "echo: small one"]


async def test_killed_mid_reply_leaves_no_half_reply_and_charges_the_call_its_worst_case_as_estimated(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    env = bot_env(fake_openai, tmp_path)
    env["QUOTA_USER_DAILY_USD"] = "1"
    fake_openai.enqueue(Reply("a long answer that never finishes " * 40, chunk_chars=4, delay_between_chunks=0.05))
    proc, first = await console_streaming(env, tmp_path, b"tell me a long story\n")
    assert first
    proc.send_signal(signal.SIGKILL)
    await proc.wait()

    db = tmp_path / "bot.sqlite3"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT role FROM messages").fetchall() == [("user",)]
        [(state, worst)] = conn.execute("SELECT state, cost_nanos FROM usage_ledger WHERE kind = 'chat'").fetchall()
        assert state == "reserved" and worst > 0

    code, out, _ = await run_bot("console", stdin="and now?\n", env=env, cwd=tmp_path)
    assert (code, out) == (0, "echo: and now?\n")
    with sqlite3.connect(db) as conn:
        # The request had been sent when the process died: the provider may have billed all of it,
        # so it is charged its worst case, marked estimated; the next call is settled as usual.
        chat = conn.execute("SELECT state, estimated, cost_nanos FROM usage_ledger WHERE kind = 'chat' ORDER BY id")
        [killed, after] = chat.fetchall()
        assert killed == ("settled", 1, worst) and after[:2] == ("settled", 0)
        assert [row[0] for row in conn.execute("SELECT role FROM messages ORDER BY id")] == [
            "user",
            "user",
            "assistant",
        ]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # The conversation continued with the question that was cut off still in it.
    assert [m["content"] for m in fake_openai.chat_requests()[-1]["messages"][1:]] == [
        "tell me a long story", "and now?"
    ]  # fmt: skip


@pytest.mark.parametrize(("grace", "finished"), [("0.2", False), ("30", True)], ids=["abandoned", "finished"])
async def test_sigterm_mid_reply_finishes_or_abandons_cleanly_and_exits_0(
    fake_openai: FakeOpenAI, tmp_path: Path, grace: str, finished: bool
) -> None:
    env = {**bot_env(fake_openai, tmp_path), "QUOTA_USER_DAILY_USD": "1", "SHUTDOWN_GRACE_SECONDS": grace}
    answer = "word " * 60
    fake_openai.enqueue(Reply(answer, chunk_chars=5, delay_between_chunks=0.02))  # ~1.2 s of streaming
    proc, first = await console_streaming(env, tmp_path, b"tell me something long\nthis line must not be answered\n")
    assert proc.stdout is not None
    proc.send_signal(signal.SIGTERM)
    printed = (first + await asyncio.wait_for(proc.stdout.read(), timeout=40)).decode()
    assert await proc.wait() == 0
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        rows = conn.execute("SELECT role, content FROM messages ORDER BY id").fetchall()
        states = [row[0] for row in conn.execute("SELECT state FROM usage_ledger WHERE kind = 'chat'")]
    if finished:
        assert printed == answer + "\n"
        assert rows == [("user", "tell me something long"), ("assistant", answer)] and states == ["settled"]
    else:
        assert printed.endswith(" [reply interrupted]\n")
        assert answer.startswith(printed.removesuffix(" [reply interrupted]\n"))
        # The provider ran the call until it was cut: its prompt and what came back are charged.
        assert rows == [("user", "tell me something long")] and states == ["settled"]
    assert len(fake_openai.chat_requests()) == 1  # the second line was never taken


async def test_draining_lets_turns_finish_or_abandons_them_and_refuses_new_ones(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(quota_user_daily_usd="1")
    fake_openai.enqueue(Reply("slow " * 40, chunk_chars=5, delay_between_chunks=0.05))  # ~2 s
    async with open_engine(settings) as engine:
        slow, late = RecordingResponder(), RecordingResponder()
        turn = asyncio.create_task(engine.handle(message("long one"), slow))
        await asyncio.sleep(0.3)  # streaming has begun
        assert await engine.drain(0.1) == 1  # did not finish in time: cancelled
        await engine.handle(message("anyone there?", user="u2"), late)
        await asyncio.gather(turn, return_exceptions=True)
        store = engine.store
        rows = await store.ledger.ledger_rows("local")
    assert [s.abandoned for s in slow.streams] == [True]
    assert late.errors == ["The bot is restarting; please send that again in a minute."]
    # Abandoned mid-answer: charged its exact prompt and the words received, counted by the tokenizer.
    prompt = prompt_tokens(fake_openai.chat_requests()[0]["messages"])
    received = count_tokens(slow.streams[0].text)
    assert received > 0
    assert [(cost, state) for *_, cost, state in rows] == [
        (PriceTable.load().chat_cost(settings.chat_model, prompt, received), "settled")
    ]
    assert await history(settings, message("x").conversation_key) == [("user", "long one")]


async def test_a_second_ctrl_c_stops_a_runaway_reply_at_once_and_charges_what_was_received(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    env = {**bot_env(fake_openai, tmp_path), "QUOTA_USER_DAILY_USD": "1", "SHUTDOWN_GRACE_SECONDS": "600"}
    answer = "word " * 400
    fake_openai.enqueue(Reply(answer, chunk_chars=5, delay_between_chunks=0.05))  # ~20 s of streaming
    proc, first = await console_streaming(env, tmp_path, b"tell me everything\n")
    assert proc.stdout is not None
    proc.send_signal(signal.SIGINT)  # the first: the reply may finish (within 600 s)...
    await asyncio.sleep(0.5)
    assert proc.returncode is None
    proc.send_signal(signal.SIGINT)  # ...the second: stop it now
    printed = (first + await asyncio.wait_for(proc.stdout.read(), timeout=10)).decode()
    assert await asyncio.wait_for(proc.wait(), timeout=10) == 0
    assert printed.endswith(" [reply interrupted]\n") and len(printed) < len(answer)
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        charged = conn.execute("SELECT state, output_tokens FROM usage_ledger WHERE kind = 'chat'").fetchall()
        rows = conn.execute("SELECT role FROM messages ORDER BY id").fetchall()
    # The provider billed what it streamed before the stop: the ledger records that, no less (issue 15).
    [(state, output_tokens)] = charged
    assert state == "settled" and 0 < output_tokens < 400
    assert rows == [("user",)]
