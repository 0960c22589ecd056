"""The console adapter, in process and as a real `python -m bot` subprocess."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity
from bot.chat.engine import Engine
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.harness.console import bot_env, run_bot


async def test_console_chat_turn_end_to_end(engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.enqueue(Reply("Hello, Ada!", chunk_chars=3))
    out = io.StringIO()
    stdin = io.StringIO("hi, I am Ada\n\n   \n/help\n")
    adapter = ConsoleAdapter(engine, ConsoleIdentity(user_id="ada"), stdin=stdin, stdout=out, files_dir=tmp_path)
    assert await adapter.run() == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "Hello, Ada!"
    assert lines[1].startswith("Type a message to chat")
    assert len(fake_openai.chat_requests()) == 1  # blank lines are skipped


async def test_console_sends_files_to_a_folder_and_prints_the_path(tmp_path: Path) -> None:
    from adapters.console.adapter import ConsoleResponder

    out = io.StringIO()
    responder = ConsoleResponder(out, tmp_path / "files")
    await responder.send_file(b"\x89PNG", "../../etc/passwd", "image/png", caption="an image")
    await responder.send_file(b"\x89PNG", "../../etc/passwd", "image/png")
    paths = [line.removeprefix("[file] ") for line in out.getvalue().splitlines() if line.startswith("[file]")]
    assert [Path(p).name for p in paths] == ["passwd", "passwd-2"]
    assert all(Path(p).parent == (tmp_path / "files").resolve() for p in paths)


async def test_history_continues_in_a_new_process_and_reset_starts_fresh(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    env = bot_env(fake_openai, tmp_path)
    fake_openai.enqueue(Reply("Noted: your name is Ada."))
    code, out, err = await run_bot("console", stdin="My name is Ada.\n", env=env, cwd=tmp_path)
    assert (code, out) == (0, "Noted: your name is Ada.\n"), err

    fake_openai.enqueue(Reply("Your name is Ada."))
    code, out, _ = await run_bot("console", stdin="What is my name?\n/reset\nAnd now?\n", env=env, cwd=tmp_path)
    assert code == 0
    assert out.splitlines() == ["Your name is Ada.", "Started a fresh conversation.", "echo: And now?"]

    second, third = fake_openai.chat_requests()[1:]
    assert [(m["role"], m["content"]) for m in second["messages"][1:]] == [
        ("user", "My name is Ada."),
        ("assistant", "Noted: your name is Ada."),
        ("user", "What is my name?"),
    ]
    assert [(m["role"], m["content"]) for m in third["messages"][1:]] == [("user", "And now?")]


async def test_piped_lines_are_handled_in_order_per_user_and_channel(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    env = bot_env(fake_openai, tmp_path)
    code, out, _ = await run_bot(
        "console", "--user", "bob", "--channel", "ops", stdin="one\ntwo\nthree\n", env=env, cwd=tmp_path
    )
    assert code == 0
    assert out.splitlines() == ["echo: one", "echo: two", "echo: three"]
    code, out, _ = await run_bot("console", "--channel", "other", stdin="four\n", env=env, cwd=tmp_path)
    assert [(m["role"]) for m in fake_openai.chat_requests()[-1]["messages"]] == ["system", "user"]


async def test_errors_reach_the_console_user_and_exit_is_still_clean(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    from tests.fakes.openai_server import InvalidKey

    fake_openai.enqueue(InvalidKey())
    code, out, err = await run_bot("console", stdin="hello\n/nope\n", env=bot_env(fake_openai, tmp_path), cwd=tmp_path)
    assert code == 0
    assert out.splitlines() == [
        "[error] The bot's OpenAI API key was refused; ask an admin to check OPENAI_API_KEY.",
        "[error] Unknown command /nope. Commands: /ask, /catchup, /dashboard, /digest, /forget, /help, /image,"
        " /model, /persona, /prompt, /quota, /reset, /search, /speak, /tools, /transcribe, /usage."
        " Try /help.",
    ]
    assert "Traceback" not in err and "test-key-not-secret" not in err


async def test_without_an_api_key_the_bot_explains_what_to_set(tmp_path: Path) -> None:
    code, out, err = await run_bot(stdin="hello\n", cwd=tmp_path)
    assert code == 2
    assert out == ""
    assert "OPENAI_API_KEY" in err and "OPENAI_BASE_URL" in err and ".env" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one paragraph


async def test_a_bad_setting_is_named_without_a_traceback(tmp_path: Path) -> None:
    code, _, err = await run_bot("console", env={"MAX_OUTPUT_TOKENS": "many"}, cwd=tmp_path)
    assert code == 2
    assert "MAX_OUTPUT_TOKENS: Input should be a valid integer" in err
    assert "Traceback" not in err


async def test_dotenv_in_the_working_directory_is_read(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    env: Any = bot_env(fake_openai, tmp_path)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    code, out, err = await run_bot("console", stdin="from dotenv\n", cwd=tmp_path)
    assert (code, out) == (0, "echo: from dotenv\n"), err


class Terminal(io.StringIO):
    """A StringIO that says it is a terminal, as an interactive session's stdin and stdout are."""

    def isatty(self) -> bool:
        return True


async def test_the_log_goes_to_a_file_and_the_console_shows_only_the_conversation(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    env = {**bot_env(fake_openai, tmp_path), "LOG_LEVEL": "INFO"}
    code, out, err = await run_bot("console", stdin="/nope\n/usage team\nhello\n", env=env, cwd=tmp_path)
    assert code == 0 and err == ""
    assert out.splitlines()[1:] == [
        "[error] /usage team is for admins only; /usage shows your own. "
        "Start the console with --admin to speak as an admin (make run ARGS=--admin).",
        "echo: hello",
    ]
    log = (tmp_path / "teambot.log").read_text()
    assert "refused console message console-1: BadCommand" in log and "hello" not in log


async def test_run_takes_the_console_options_so_make_run_can_pass_admin(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    code, out, err = await run_bot(
        "run", "--admin", stdin="/quota show\n", env=bot_env(fake_openai, tmp_path), cwd=tmp_path
    )
    assert code == 0 and out.startswith("Defaults (settings"), out + err


async def test_help_on_the_console_speaks_of_the_console_and_how_to_be_admin(engine: Engine, tmp_path: Path) -> None:
    out = io.StringIO()
    await ConsoleAdapter(engine, ConsoleIdentity(), stdin=io.StringIO("/help\n"), stdout=out, files_dir=tmp_path).run()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Type a message to chat; this channel is the conversation")
    assert "Mention me" not in out.getvalue()
    assert (
        lines[-1]
        == "Admins also have /quota. Start the console with --admin to speak as an admin (make run ARGS=--admin)."
    )


async def test_transcribe_with_a_path_that_is_not_a_file_says_so(engine: Engine, tmp_path: Path) -> None:
    out = io.StringIO()
    stdin = io.StringIO("/transcribe no-such.mp3\n/transcribe language=de\n")
    await ConsoleAdapter(engine, ConsoleIdentity(), stdin=stdin, stdout=out, files_dir=tmp_path).run()
    missing, no_file = out.getvalue().splitlines()[:2]
    assert missing.startswith(f"[error] no-such.mp3 does not exist (relative paths start in {tmp_path})")
    assert "/transcribe recordings/meeting.mp3" in missing
    assert no_file == "[error] Attach an audio or video file to transcribe."


async def test_on_a_terminal_status_shows_until_the_reply_replaces_it(
    engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.enqueue(Reply("Hi!"))
    out = Terminal()
    adapter = ConsoleAdapter(engine, ConsoleIdentity(), stdin=Terminal("hello\n"), stdout=out, files_dir=tmp_path)
    await adapter.run()
    assert "you> … thinking…\r\x1b[2KHi!\n" in out.getvalue()
    piped = io.StringIO()
    fake_openai.enqueue(Reply("Hi!"))
    await ConsoleAdapter(engine, ConsoleIdentity(), stdin=io.StringIO("hello\n"), stdout=piped).run()
    assert piped.getvalue() == "Hi!\n"  # a pipe gets only the answers


async def test_a_console_that_cannot_reach_the_model_says_which_address_it_tried(tmp_path: Path) -> None:
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {
        "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "OPENAI_MAX_RETRIES": "0",
        "MEMORY_ENABLED": "false",
    }
    code, out, _ = await run_bot("console", stdin="hello\n", env=env, cwd=tmp_path)
    assert code == 0
    assert out == (
        "[error] Could not reach the model's server. Please try again in a moment.\n"
        f"Tried http://127.0.0.1:{port}/v1/chat/completions (OPENAI_BASE_URL): is the model server running there?\n"
    )
