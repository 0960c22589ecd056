"""/image with an attached image (edits) and spoken replies (/speak, /ask voice=on), end to end."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity
from bot.app import open_engine
from bot.billing.prices import PriceTable
from bot.chat.engine import Engine
from bot.settings import Settings
from tests.fakes.openai_server import TINY_PNG, FakeOpenAI, InvalidImage, SpeechInputTooLong, SpeechReply
from tests.fakes.responder import RecordingResponder
from tests.harness.media import ledger
from tests.harness.messages import message
from tests.harness.vision import attachment, png

PRICES = PriceTable.load()


async def run(engine: Engine, text: str, *files: Any) -> RecordingResponder:
    responder = RecordingResponder()
    await engine.handle(message(text, attachments=files), responder)
    return responder


# --- /image with an image: edits ---------------------------------------------------------------


async def test_image_with_an_attached_image_edits_it_and_is_charged_per_image(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    source = png(64, 64)
    r = await run(engine, "/image make the sky purple 1024x1536 low", attachment("sky.png", source))
    assert r.errors == []
    assert [(f.filename, f.data) for f in r.files] == [("image-1.png", TINY_PNG)]
    assert fake_openai.requests_to("/v1/images/generations") == []
    [upload] = fake_openai.edit_uploads
    assert upload["image"] == ("sky.png", source)
    assert (upload["prompt"], upload["model"], upload["size"], upload["quality"]) == (
        "make the sky purple", "gpt-image-1", "1024x1536", "low",
    )  # fmt: skip
    assert await ledger(settings) == [
        ("image", "gpt-image-1", PRICES.image_cost("gpt-image-1", "low", "1024x1536"), "settled")
    ]


async def test_an_edit_refuses_files_that_are_not_images_before_spending(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    r = await run(engine, "/image brighter", attachment("notes.txt", b"hello", "text/plain"))
    assert r.errors and "notes.txt is not an image" in r.errors[0]
    r = await run(engine, "/image brighter", attachment("fake.png", b"GIF? no, nothing"))
    assert r.errors and "fake.png is not an image I can read" in r.errors[0]
    assert fake_openai.edit_uploads == [] and await ledger(settings) == []


async def test_a_gif_is_edited_as_a_png(engine: Engine, fake_openai: FakeOpenAI) -> None:
    r = await run(engine, "/image sharper", attachment("anim.gif", png(16, 16, fmt="GIF"), "image/gif"))
    assert r.errors == []
    name, data = fake_openai.edit_uploads[0]["image"]
    assert name == "anim.png" and Image.open(io.BytesIO(data)).format == "PNG"


async def test_a_model_that_cannot_edit_says_so(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    async with open_engine(make_settings(image_model="dall-e-3", image_quality="standard")) as engine:
        r = await run(engine, "/image brighter", attachment("a.png", png(8, 8)))
    assert r.errors and "dall-e-3 cannot edit images" in r.errors[0]
    assert fake_openai.edit_uploads == []


async def test_the_apis_refusal_of_an_image_is_clear_and_costs_nothing(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    fake_openai.enqueue_images(InvalidImage())
    r = await run(engine, "/image brighter", attachment("a.png", png(8, 8)))
    assert r.errors and "unsupported image" in r.errors[0] and r.files == []
    assert [row[3] for row in await ledger(settings)] in ([], ["released"])
    assert all(row[2] == 0 for row in await ledger(settings))


# --- /speak and /ask voice=on ------------------------------------------------------------------


async def test_speak_uploads_an_mp3_metered_by_its_measured_length(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    fake_openai.enqueue_speech(SpeechReply(seconds=3.0))
    r = await run(engine, "/speak voice=nova Good morning, team!")
    assert r.errors == []
    [sent] = r.files
    assert (sent.filename, sent.content_type) == ("speech.mp3", "audio/mpeg") and len(sent.data) > 1000
    [request] = fake_openai.requests_to("/v1/audio/speech")
    assert request.json == {"input": "Good morning, team!", "model": "gpt-4o-mini-tts", "voice": "nova",
                            "response_format": "mp3"}  # fmt: skip
    [(kind, model, cost, state)] = await ledger(settings)
    assert (kind, model, state) == ("audio", "gpt-4o-mini-tts", "settled")
    text_tokens = engine.speaker._tokens.count("Good morning, team!")
    # ~3 s measured (an MP3 frame or so either way), not the 3.8 s worst case reserved for 19 characters.
    low = PRICES.speech_cost("gpt-4o-mini-tts", chars=19, text_tokens=text_tokens, seconds=2.9)
    high = PRICES.speech_cost("gpt-4o-mini-tts", chars=19, text_tokens=text_tokens, seconds=3.1)
    assert low <= cost <= high


async def test_speak_checks_length_and_voice_before_spending(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    r = await run(engine, "/speak " + "word " * 1000)
    assert r.errors and "4,999 characters" in r.errors[0] and "at most 4,096" in r.errors[0]
    r = await run(engine, "/speak voice=gandalf hello")
    assert r.errors and "no voice 'gandalf'" in r.errors[0] and "alloy" in r.errors[0]
    r = await run(engine, "/speak")
    assert r.errors and "Usage: /speak" in r.errors[0]
    assert fake_openai.requests_to("/v1/audio/speech") == [] and await ledger(settings) == []


async def test_the_speech_apis_errors_are_clear_and_cost_nothing(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    fake_openai.enqueue_speech(SpeechInputTooLong())
    r = await run(engine, "/speak hello")
    assert r.errors and "4096 characters" in r.errors[0] and r.files == []
    assert all(cost == 0 for _, _, cost, _ in await ledger(settings))


async def test_ask_with_voice_streams_the_answer_then_speaks_it(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    r = await run(engine, "/ask voice=on what is the capital of France?")
    assert r.errors == [] and r.replies == ["echo: what is the capital of France?"]
    [request] = fake_openai.requests_to("/v1/audio/speech")
    assert request.json is not None and request.json["input"] == "echo: what is the capital of France?"
    assert request.json["voice"] == settings.speech_voice
    assert [f.filename for f in r.files] == ["speech.mp3"]
    assert [row[0] for row in await ledger(settings)] == ["chat", "audio"]


async def test_ask_with_voice_says_when_the_answer_is_too_long_to_speak(
    engine: Engine, fake_openai: FakeOpenAI
) -> None:
    from tests.fakes.openai_server import Reply

    fake_openai.enqueue(Reply("long " * 1000))
    r = await run(engine, "/ask voice=on tell me everything")
    assert r.files == [] and any("too long to speak" in text for text, _ in r.texts)
    assert fake_openai.requests_to("/v1/audio/speech") == []


# --- the console takes paths --------------------------------------------------------------------


async def test_the_console_attaches_image_paths_in_a_line(
    engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / "photo.png").write_bytes(png(20, 20))
    (tmp_path / "notes.md").write_text("ship on Friday\n")
    out = io.StringIO()
    stdin = io.StringIO(f"what is in {tmp_path / 'photo.png'}?\n/image make it blue {tmp_path / 'photo.png'}\n"
                        f"/speak hello\nsummarize {tmp_path / 'notes.md'}\n")  # fmt: skip
    await ConsoleAdapter(engine, ConsoleIdentity(), stdin=stdin, stdout=out, files_dir=tmp_path / "out").run()
    lines = out.getvalue().splitlines()
    assert lines[0] == "echo: what is in\n\n[image: photo.png] [1 image(s)]".splitlines()[0]
    assert len(fake_openai.edit_uploads) == 1
    assert any(line.startswith("[file] ") and line.endswith(".mp3") for line in lines)
    assert (
        fake_openai.chat_requests()[-1]["messages"][-1]["content"] == "summarize\n\n--- notes.md ---\nship on Friday\n"
    )
