from bot.commands import parse_command_line
from bot.messages import Command
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message


def test_parser_splits_quoted_arguments_and_lowercases_the_name() -> None:
    assert parse_command_line('/ASK "what is" two') == Command("ask", '"what is" two', ("what is", "two"))
    assert parse_command_line("/reset") == Command("reset", "", ())


def test_parser_survives_unbalanced_quotes() -> None:
    assert parse_command_line("/ask it's \"odd") == Command("ask", "it's \"odd", ("it's", '"odd'))


def test_ordinary_text_and_paths_are_not_commands() -> None:
    assert parse_command_line("hello /ask") is None
    assert parse_command_line("//comment") is None
    assert parse_command_line("/usr/bin/env is a path") is None
    assert parse_command_line("/") is None


async def test_unknown_command_lists_the_known_ones(engine) -> None:  # type: ignore[no-untyped-def]
    responder = RecordingResponder()
    await engine.handle(message("/fly me"), responder)
    assert responder.errors == [
        "Unknown command /fly. Commands: /ask, /catchup, /dashboard, /digest, /forget, /help, /image, /model,"
        " /persona, /prompt, /quota, /reset, /search, /speak, /tools, /transcribe, /usage. Try /help."
    ]


async def test_ask_without_a_question_shows_usage(engine, fake_openai) -> None:  # type: ignore[no-untyped-def]
    responder = RecordingResponder()
    await engine.handle(message("/ask"), responder)
    assert responder.errors == ["Ask something after /ask.\nUsage: /ask [voice=on|<voice>] <question>"]
    assert fake_openai.chat_requests() == []


async def test_help_lists_every_command_privately(engine) -> None:  # type: ignore[no-untyped-def]
    responder = RecordingResponder()
    await engine.handle(message("/help"), responder)
    [(text, private)] = responder.texts
    assert private
    for usage in ("/ask [voice=on|<voice>] <question>", "/reset", "/help"):
        assert usage in text
