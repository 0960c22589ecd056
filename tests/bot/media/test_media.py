"""/image and /transcribe end to end: real ffmpeg, the real openai client, the loopback fake."""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity, file_attachment
from bot.app import open_engine
from bot.billing.prices import PriceTable
from bot.chat.engine import Engine
from bot.media.audio import plan_cuts
from bot.messages import Author, IncomingMessage
from bot.settings import Settings
from tests.fakes.openai_server import (
    TINY_PNG,
    ContentPolicy,
    FakeOpenAI,
    ImageReply,
    RateLimit,
    Reply,
    TranscriptionReply,
)
from tests.harness.audio import make_audio
from tests.harness.media import bytes_attachment, ledger, run
from tests.harness.messages import message

PRICES = PriceTable.load()


def charged_seconds(cost_nanos: int) -> float:
    """The seconds of audio a charge pays for at the transcription model's price."""
    return cost_nanos / PRICES.audio_cost("gpt-4o-mini-transcribe", 1.0)


def with_file(text: str, path: Path, **who: Any) -> IncomingMessage:
    return message(text, attachments=(file_attachment(path),), **who)


# --- /image ------------------------------------------------------------------------------------


async def test_image_is_drawn_sent_as_png_and_charged_per_image(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    fake_openai.enqueue_images(ImageReply(revised_prompt="A red lighthouse at dusk, oil painting"))
    r = await run(engine, message("/image a lighthouse at dusk 1536x1024 high 2"))
    assert r.errors == []
    assert [(f.filename, f.content_type, f.data) for f in r.files] == [
        ("image-1.png", "image/png", TINY_PNG), ("image-2.png", "image/png", TINY_PNG)
    ]  # fmt: skip
    assert r.files[0].caption == "Revised prompt: A red lighthouse at dusk, oil painting"
    [request] = fake_openai.requests_to("/v1/images/generations")
    assert request.json == {"prompt": "a lighthouse at dusk", "model": "gpt-image-1", "size": "1536x1024",
                            "quality": "high", "n": 2}  # fmt: skip
    assert await ledger(settings) == [
        ("image", "gpt-image-1", PRICES.image_cost("gpt-image-1", "high", "1536x1024", 2), "settled")
    ]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/image", "Describe the image after /image."),
        ("/image a cat 512x512", "gpt-image-1 cannot draw 512x512; sizes: 1024x1024, 1024x1536, 1536x1024."),
        ("/image a cat quality=ultra", "gpt-image-1 has no quality 'ultra'; qualities: low, medium, high."),
        ("/image a cat n=9", "Ask for 1 to 4 images at a time."),
        ("/image " + "x" * 32_001, "The prompt is 32,001 characters; gpt-image-1 takes at most 32,000."),
    ],
)
async def test_bad_image_requests_are_refused_before_any_call(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings, line: str, error: str
) -> None:
    r = await run(engine, message(line))
    assert len(r.errors) == 1 and r.errors[0].startswith(error)
    assert fake_openai.requests_to("/v1/images/generations") == []
    assert await ledger(settings) == []


async def test_an_image_refusal_is_explained_and_costs_nothing(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    fake_openai.enqueue_images(ContentPolicy())
    r = await run(engine, message("/image something not allowed"))
    assert r.errors == ["The model's content policy refused this request. Try rephrasing it."]
    assert await ledger(settings) == [("image", "gpt-image-1", 0, "released")]


async def test_images_over_the_daily_count_are_refused(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    async with open_engine(make_settings(quota_user_daily_images=3)) as engine:
        assert (await run(engine, message("/image a cat 2"))).errors == []
        r = await run(engine, message("/image a dog 2"))
    assert r.errors[0].startswith("You've made 2 of your 3 images today (this asks for 2); it resets in")
    assert len(fake_openai.requests_to("/v1/images/generations")) == 1


# --- /transcribe -------------------------------------------------------------------------------


async def test_a_short_clip_is_transcribed_charged_by_the_minute_and_remembered(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings, tmp_path: Path
) -> None:
    clip = make_audio(tmp_path / "standup.mp3", 12)
    fake_openai.enqueue_transcriptions(TranscriptionReply("We decided to ship on Friday."))
    r = await run(engine, with_file("/transcribe language=en", clip))
    assert r.texts == [("We decided to ship on Friday.", False)]
    [upload] = fake_openai.requests_to("/v1/audio/transcriptions")
    assert upload.json is not None
    assert (upload.json["model"], upload.json["language"], upload.json["file_name"]) == (
        "gpt-4o-mini-transcribe", "en", "standup.mp3"
    )  # fmt: skip
    assert fake_openai.audio_files[0][1] == clip.read_bytes()  # a small, short file is sent as it is
    [(kind, model, cost, state)] = await ledger(settings)
    assert (kind, model, state) == ("audio", "gpt-4o-mini-transcribe", "settled")
    assert charged_seconds(cost) == pytest.approx(12.0, abs=0.1)  # the measured length, to the tenth
    # A follow-up question sees the transcript.
    await run(engine, message("what did they decide?"))
    sent = fake_openai.chat_requests()[-1]["messages"]
    assert any("We decided to ship on Friday." in m["content"] for m in sent if m["role"] == "assistant")


async def test_a_long_clip_is_split_at_silences_transcribed_in_order_and_joined(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(transcribe_chunk_seconds=60, transcribe_concurrency=2)
    clip = make_audio(tmp_path / "meeting.ogg", 200, gap_every=50)  # silences end at 50, 100, 150, 200 s
    async with open_engine(settings) as engine:
        r = await run(engine, with_file("/transcribe", clip))
    uploads = fake_openai.requests_to("/v1/audio/transcriptions")
    names = [u.json["file_name"] for u in uploads if u.json]
    assert sorted(names) == ["part-000.mp3", "part-001.mp3", "part-002.mp3", "part-003.mp3"]
    [(text, _)] = r.texts
    assert [line.split(":")[0] for line in text.split("\n\n")] == [f"[part-00{i}.mp3" for i in range(4)]
    assert "transcribing part 2 of 4…" in r.statuses
    [(kind, _, cost, state)] = await ledger(settings)
    assert (kind, state) == ("audio", "settled")
    assert charged_seconds(cost) == pytest.approx(200.0, abs=0.1)  # every part, once


async def test_a_rate_limit_midway_keeps_and_charges_only_what_was_done(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(transcribe_chunk_seconds=60, transcribe_concurrency=1)
    clip = make_audio(tmp_path / "talk.mp3", 150, gap_every=50)
    fake_openai.enqueue_transcriptions(TranscriptionReply("first part"), RateLimit(retry_after=30))
    async with open_engine(settings) as engine:
        r = await run(engine, with_file("/transcribe", clip))
    assert len(fake_openai.requests_to("/v1/audio/transcriptions")) == 2  # the third part was never sent
    [(text, _)] = r.texts
    assert text.startswith("first part\n\n[part 2 of 3 was not transcribed]")
    assert r.errors[0].startswith("Transcribed 0.8 of 2.5 minutes before the model failed: The model is rate limited")
    [(_, _, cost, state)] = await ledger(settings)
    assert state == "settled" and 0 < cost < PRICES.audio_cost("gpt-4o-mini-transcribe", 150.0)


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("empty.mp3", b"", "empty.mp3 is empty (0 bytes)."),
        ("voice.mp3", b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>", "voice.mp3 is a web page"),
        ("song.mp3", TINY_PNG, "song.mp3 is a PNG image, not audio or video."),
        ("noise.mp3", b"\x00\x01\x02 definitely not audio" * 50, "noise.mp3 has no audio that ffmpeg can read"),
    ],
)
async def test_files_that_are_not_audio_are_refused_before_any_spending(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings, name: str, data: bytes, error: str
) -> None:
    r = await run(engine, message("/transcribe", attachments=(bytes_attachment(name, data),)))
    assert len(r.errors) == 1 and r.errors[0].startswith(error)
    assert fake_openai.requests_to("/v1/audio/transcriptions") == []
    assert await ledger(settings) == []


async def test_audio_over_the_maximum_length_is_refused(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    clip = make_audio(tmp_path / "long.wav", 75)
    async with open_engine(make_settings(transcribe_max_minutes=1)) as engine:
        r = await run(engine, with_file("/transcribe", clip))
    assert r.errors == ["long.wav is 1.2 minutes long; the limit is 1 minutes."]
    assert fake_openai.requests_to("/v1/audio/transcriptions") == []


async def test_no_file_or_a_bad_option_gets_the_usage(engine: Engine) -> None:
    assert (await run(engine, message("/transcribe"))).errors[0].startswith("Attach an audio or video file")
    assert (
        (await run(engine, message("/transcribe language=english")))
        .errors[0]
        .startswith("language=english is not a two-letter ISO-639-1 code")
    )


async def test_summary_runs_the_chat_model_on_the_transcript(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings, tmp_path: Path
) -> None:
    clip = make_audio(tmp_path / "a.mp3", 5)
    fake_openai.enqueue_transcriptions(TranscriptionReply("Alice will write the spec."))
    fake_openai.enqueue(Reply("- Alice writes the spec"))
    r = await run(engine, with_file("/transcribe summary", clip))
    assert r.replies == ["- Alice writes the spec"]
    assert "Alice will write the spec." in fake_openai.chat_requests()[-1]["messages"][-1]["content"]
    assert [kind for kind, *_ in await ledger(settings)] == ["audio", "chat"]


async def test_the_console_transcribes_a_file_given_by_path(
    engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    clip = make_audio(tmp_path / "memo.wav", 3)
    out = io.StringIO()
    adapter = ConsoleAdapter(engine, ConsoleIdentity(), stdin=io.StringIO(f"/transcribe {clip}\n"), stdout=out)
    assert await adapter.run() == 0
    assert out.getvalue() == f"[memo.wav: {clip.stat().st_size} bytes]\n"


async def test_voice_messages_are_transcribed_when_the_setting_is_on(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    clip = make_audio(tmp_path / "voice-message.ogg", 2)
    voice = IncomingMessage("console", "local", "c1", Author("u1", "u1"), "", attachments=(file_attachment(clip),))
    async with open_engine(make_settings()) as engine:
        off = await run(engine, voice)
    async with open_engine(make_settings(transcribe_voice_messages=True)) as engine:
        on = await run(engine, voice)
    assert off.texts[0][0].startswith("I got a recording") and "/transcribe" in off.texts[0][0]  # not "I'm here."
    assert on.texts[0][0].startswith("[voice-message.ogg")


@given(
    st.floats(min_value=1, max_value=20_000),
    st.floats(min_value=30, max_value=1_200),
    st.lists(st.tuples(st.floats(0, 20_000), st.floats(0, 5)), max_size=30),
)
def test_planned_parts_are_never_longer_than_a_chunk(
    total: float, chunk: float, gaps: list[tuple[float, float]]
) -> None:
    quiet = sorted((start, start + length) for start, length in gaps)
    cuts = plan_cuts(total, chunk, quiet)
    edges = [0.0, *cuts, total]
    assert all(b > a for a, b in itertools.pairwise(edges))
    assert all(b - a <= chunk + 0.001 for a, b in itertools.pairwise(edges))
    assert len(cuts) <= math.ceil(total / (chunk * 0.8))


async def test_a_file_over_the_api_limit_is_re_encoded_smaller_even_when_short(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    clip = make_audio(tmp_path / "big.wav", 840)  # 16 kHz 16-bit mono WAV: ~26.9 MB, over the API's 25 MB
    assert clip.stat().st_size > 25 * 1024 * 1024
    async with open_engine(make_settings(transcribe_chunk_seconds=900)) as engine:
        r = await run(engine, with_file("/transcribe", clip))
    assert r.errors == []
    [(name, data)] = fake_openai.audio_files
    assert name == "part-000.mp3" and len(data) < 6 * 1024 * 1024


async def test_temporary_audio_files_are_removed_even_when_the_call_fails(
    engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    import tempfile

    def leftovers() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob("teambot-audio-*")}

    before = leftovers()
    fake_openai.enqueue_transcriptions(RateLimit(retry_after=5))
    r = await run(engine, with_file("/transcribe", make_audio(tmp_path / "x.mp3", 3)))
    assert r.errors == ["The model is rate limited right now; try again in 5 s."]
    assert leftovers() == before
