"""The operator CLI: `python -m bot usage` and `python -m bot quota` on the bot's database."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_engine
from bot.cli import main
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.responder import RecordingResponder
from tests.harness.admin_cli import run_cli
from tests.harness.messages import message


@pytest.fixture
async def spent(make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    """Two users' chat calls in team 'local', and the CLI pointed at the same database."""
    fake_openai.enqueue(
        Reply("a", prompt_tokens=1_000_000, completion_tokens=0), Reply("b", prompt_tokens=0, completion_tokens=500_000)
    )
    async with open_engine(make_settings()) as engine:
        await engine.handle(message("x", user="ann"), RecordingResponder())
        await engine.handle(message("y", user="bob", channel="c2"), RecordingResponder())
    monkeypatch.setenv("DATABASE_URL", db_url)


async def test_usage_as_json_csv_and_table(spent: None) -> None:
    code, out, _ = await run_cli("usage", "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["total_usd"] == "1.200000000"
    assert {(r["user_id"], r["cost_usd"]) for r in report["rows"]} == {("ann", "0.400000000"), ("bob", "0.800000000")}

    code, out, _ = await run_cli("usage", "--format", "csv", "--user", "bob")
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert (row["platform"], row["team_id"], row["user_id"], row["kind"], row["calls"], row["cost_usd"]) == (
        "console", "local", "bob", "chat", "1", "0.800000000"
    )  # fmt: skip

    code, out, _ = await run_cli("usage", "--team", "local")
    assert out.splitlines()[0].split() == [
        "day", "platform", "team_id", "user_id", "kind", "calls", "cost_usd", "input_tokens", "output_tokens",
        "images", "audio_minutes", "searches", "estimated_usd",
    ]  # fmt: skip
    assert out.splitlines()[-1] == "total $1.20 in 2 calls"

    code, out, _ = await run_cli("usage", "--team", "nobody")
    assert out.splitlines()[-1] == "total $0.00 in 0 calls"


async def test_quota_set_show_and_reset_from_the_command_line(spent: None) -> None:
    code, out, _ = await run_cli("quota", "--by", "ops", "set", "user", "ann", "daily", "0.25")
    assert (code, out) == (0, "[team local] User ann: daily budget default → $0.25.\n")
    code, out, _ = await run_cli("quota", "show")
    assert "user ann: daily budget $0.25" in out and "ops: user ann daily budget default → $0.25" in out
    code, out, _ = await run_cli("quota", "reset", "user", "ann")
    assert out == "[team local] User ann: 1 limit back to the defaults.\n"


async def test_quota_without_team_on_several_teams_lists_them_and_changes_nothing(
    spent: None, make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(Reply("c"))
    async with open_engine(make_settings()) as engine:
        await engine.handle(message("z", user="U1", platform="slack", team="T42"), RecordingResponder())
    code, out, err = await run_cli("quota", "set", "users", "daily", "1")
    assert (code, out) == (64, "")
    assert (
        err.splitlines()[0]
        == "This database has 2 teams; say which with --team (python -m bot teams shows their names):"
    )
    assert [line.split()[:3] for line in err.splitlines()[1:]] == [
        ["--team", "local", "(console,"], ["--team", "T42", "(slack,"]
    ]  # fmt: skip
    code, out, _ = await run_cli("quota", "--team", "T42", "set", "users", "daily", "1")
    assert (code, out) == (0, "[team T42] Every user: daily budget default → $1.00.\n")


async def test_teams_lists_each_team_with_its_name_activity_and_spend(
    spent: None, make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.slack_api import FakeSlack

    fake_openai.enqueue(Reply("c", prompt_tokens=1_000_000, completion_tokens=0))
    async with open_engine(make_settings()) as engine:
        await engine.handle(message("z", user="U1", platform="slack", team="T1"), RecordingResponder())
    code, out, _ = await run_cli("teams")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["platform", "team_id", "name", "conversations", "calls"]
    assert lines[1].startswith("console   local    this machine's console  2") and "$1.20" in lines[1]
    assert lines[2].startswith("slack     T1       ?") and "$0.40" in lines[2]
    assert lines[3].startswith("? = the platform was not asked")
    async with FakeSlack() as slack:  # with the bot token, Slack is asked (auth.test) for the workspace's name
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", "not-a-real-secret")
        monkeypatch.setenv("SLACK_API_URL", slack.base_url)
        code, out, _ = await run_cli("teams")
    assert out.splitlines()[2].startswith("slack     T1       Acme Corp")
    assert len(out.splitlines()) == 3


async def test_a_wrong_cli_quota_line_is_a_usage_error_not_a_traceback(spent: None) -> None:
    code, out, err = await run_cli("quota", "set", "user", "ann", "weekly", "3")
    assert (code, out) == (64, "")
    assert err.startswith("Unknown user limit 'weekly': use daily, images, audio, searches.")
    assert "Traceback" not in err


def test_a_bad_since_date_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["usage", "--since", "yesterday"])
    assert exit_.value.code == 2
    assert "'yesterday' is not a date: use YYYY-MM-DD, e.g. 2026-12-01" in capsys.readouterr().err


async def test_prompts_export_and_import_on_the_command_line(
    make_settings: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> None:
    async with open_engine(make_settings()) as engine:
        await engine.handle(message("/prompt save p Hello {x}"), RecordingResponder())
        await engine.handle(message("/prompt run p x=1"), RecordingResponder())
    monkeypatch.setenv("DATABASE_URL", db_url)
    code, out, _ = await run_cli("prompts", "export")
    assert code == 0 and json.loads(out)["prompts"][0]["name"] == "p"
    export = tmp_path / "export.json"
    export.write_text(out)

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    assert (await run_cli("prompts", "import", str(export)))[:2] == (
        0, "Imported 1 prompt, 1 version, 1 run, 0 ratings.\n"
    )  # fmt: skip
    assert (await run_cli("prompts", "import", str(export)))[
        1
    ] == "Imported 0 prompts, 0 versions, 0 runs, 0 ratings.\n"

    tampered = json.loads(out)
    tampered["prompts"][0]["versions"][0]["template"] = "Changed {x}"
    export.write_text(json.dumps(tampered))
    code, out, err = await run_cli("prompts", "import", str(export))
    assert (code, out) == (64, "")
    assert err.strip() == "Nothing imported: p v1 differs from the stored v1."

    export.write_text("{not json")
    code, _, err = await run_cli("prompts", "import", str(export))
    assert code == 64 and err.startswith(f"Cannot read {export}: Expecting property name")


async def test_an_operator_lists_and_ends_dashboard_sessions(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    from datetime import timedelta

    from bot.dashboard.signin import digest
    from storage.signins import SignInGrant, WebSession

    async with open_engine(make_settings()) as engine:
        now = engine.now()
        grants = {"ann": SignInGrant("slack", "T1", "UANN", "Ann", True),
                  "bob": SignInGrant("slack", "T1", "UBOB", "Bob", False),
                  "cid": SignInGrant("discord", "G2", "77", "Cid", True)}  # fmt: skip
        for name, grant in grants.items():
            await engine.store.signins.add_session(digest(name), WebSession(grant, now, now + timedelta(hours=720)))
        await engine.store.signins.add_link(digest("ann-link"), grants["ann"], now + timedelta(minutes=10))
    monkeypatch.setenv("DATABASE_URL", db_url)
    code, listed, _ = await run_cli("dashboard", "sessions")
    assert code == 0 and all(who in listed for who in ("UANN", "UBOB", "77", "Ann", "admin", "member"))
    assert "ann" not in listed.replace("Ann", "")  # never a secret or its digest
    code, _, err = await run_cli("dashboard", "sessions", "--end")
    assert code == 64 and "--end-all" in err  # ending everything takes its own flag
    code, out, _ = await run_cli("dashboard", "sessions", "--end", "--user", "UANN")
    assert code == 0 and "Ended 1 session and voided 1 unused link" in out
    _, listed, _ = await run_cli("dashboard", "sessions", "--team", "T1")
    assert "UBOB" in listed and "UANN" not in listed and "77" not in listed
    code, out, _ = await run_cli("dashboard", "sessions", "--end-all")
    assert code == 0 and "Ended 2 sessions" in out
    async with open_engine(make_settings()) as engine:
        for name in grants:
            assert await engine.store.signins.session(digest(name), engine.now()) is None
    _, listed, _ = await run_cli("dashboard", "sessions")
    assert "No dashboard session is open." in listed
