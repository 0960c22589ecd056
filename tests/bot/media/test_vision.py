"""Images and text files in conversations: sent as data URLs, scaled, counted, refused clearly."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from bot.app import open_engine
from bot.billing.prices import PriceTable
from bot.chat.engine import Engine
from bot.media.vision import VisionFormula
from bot.settings import Settings
from tests.fakes.openai_server import (
    IMAGE_PART_TOKENS,
    FakeOpenAI,
    InvalidImage,
    NoVision,
    count_tokens,
    image_parts,
    prompt_tokens,
)
from tests.harness.vision import attachment, png, run, sent_image

PRICES = PriceTable.load()


def pixel(image: Image.Image) -> tuple[int, int, int]:
    value = image.convert("RGB").getpixel((0, 0))
    assert isinstance(value, tuple)
    return (value[0], value[1], value[2])


async def test_attached_image_is_sent_as_a_data_url_beside_the_text(engine: Engine, fake_openai: FakeOpenAI) -> None:
    r = await run(engine, "what colour is this?", attachment("red.png", png(64, 48)))
    assert r.errors == []
    assert r.replies == ["echo: what colour is this?\n\n[image: red.png] [1 image(s)]"]
    (part,) = image_parts(fake_openai.chat_requests()[-1])
    assert part["image_url"]["detail"] == "auto"
    image = sent_image(part)
    assert image.size == (64, 48) and pixel(image) == (200, 30, 30)


async def test_image_tokens_are_part_of_the_worst_case_reserved_and_settled_from_usage(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    # gpt-4o counts tiles: a 1024x1024 image is scaled to 768x768, 4 tiles: 85 + 4 * 170 = 765 tokens,
    # $0.0019 at $2.50/1M. The worst case without it is about $0.0101 (1,000 output tokens at $10/1M).
    settings = make_settings(chat_model="gpt-4o", quota_user_daily_usd="0.011")
    async with open_engine(settings) as engine:
        refused = await run(engine, "hello there", attachment("sq.png", png(1024, 1024)))
        assert refused.errors and "daily" in refused.errors[0]
        assert fake_openai.chat_requests() == []
        text_only = await run(engine, "hello there", channel="other")
        assert text_only.errors == []
    async with open_engine(make_settings(chat_model="gpt-4o")) as engine:
        r = await run(engine, "hello there", attachment("sq.png", png(1024, 1024)), channel="b")
        assert r.errors == []
        store = engine.store
        rows = await store.ledger.ledger_rows("local")
    # Settled from the reported usage: the fake reports 85 tokens per image, not our worst case of 765.
    reported = prompt_tokens(fake_openai.chat_requests()[-1]["messages"])
    assert reported < 765
    assert rows[-1] == ("chat", "gpt-4o", PRICES.chat_cost("gpt-4o", reported, count_tokens(r.replies[0])), "settled")


async def test_a_large_image_is_scaled_to_what_the_model_reads(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    # gpt-4.1-mini reads at most 1536 patches of 32 px: 1800x2400 becomes 1056x1408 (OpenAI's own example).
    async with open_engine(make_settings(chat_model="gpt-4.1-mini")) as engine:
        r = await run(engine, "describe", attachment("big.jpg", png(1800, 2400, fmt="JPEG"), "image/jpeg"))
    assert r.errors == []
    image = sent_image(image_parts(fake_openai.chat_requests()[-1])[0])
    assert image.size == (1056, 1408) and image.format == "JPEG"


def test_vision_formulas_match_openais_worked_examples() -> None:
    tiles = VisionFormula.from_table(PRICES.vision("gpt-4o") or {})
    assert tiles.scaled_size(2048, 4096, "high") == (768, 1536)
    assert tiles.tokens(768, 1536, "high") == 1105
    assert tiles.tokens(768, 1536, "low") == 85
    patches = VisionFormula.from_table(PRICES.vision("gpt-4.1-mini") or {})
    assert patches.scaled_size(1024, 1024, "auto") == (1024, 1024)
    assert patches.tokens(1024, 1024, "auto") == 1659  # 1024 patches x 1.62, rounded up


async def test_a_text_only_model_is_named_instead_of_dropping_the_image(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[chat."text-only-1"]\ninput = 1.0\noutput = 2.0\n')
    async with open_engine(make_settings(chat_model="text-only-1", prices_file=prices)) as engine:
        r = await run(engine, "what is this?", attachment("cat.png", png(10, 10)))
    assert r.replies == []
    assert r.errors and "text-only-1 reads text only" in r.errors[0] and "cat.png" in r.errors[0]
    assert fake_openai.chat_requests() == []


async def test_oversized_image_and_non_image_files_get_clear_messages(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    too_big = attachment("huge.png", png(8, 8), size=(settings.max_attachment_mb + 1) * 2**20)
    r = await run(engine, "look", too_big)
    assert r.errors and "huge.png" in r.errors[0] and "MAX_ATTACHMENT_MB" in r.errors[0]
    r = await run(engine, "look", attachment("fake.png", b"not an image at all"))
    assert r.errors and "fake.png is not an image" in r.errors[0]
    r = await run(engine, "look", attachment("setup.exe", b"MZ\x90\x00", "application/x-msdownload"))
    assert r.errors and "setup.exe is neither an image nor a document" in r.errors[0]
    r = await run(engine, "look", attachment("report.pdf", b"%PDF-1.4 ...", "application/pdf"))
    assert r.errors and "report.pdf could not be read as a PDF" in r.errors[0]
    r = await run(engine, "look", attachment("broken.png", png(40, 40)[:60]))
    assert r.errors and "broken.png could not be read" in r.errors[0]
    assert fake_openai.chat_requests() == []


async def test_text_attachments_join_the_message(engine: Engine, fake_openai: FakeOpenAI) -> None:
    notes = attachment("notes.md", b"# Plan\nship on Friday\n", "text/markdown")
    code = attachment("main.py", b"print('hi')\n", "application/octet-stream")
    r = await run(engine, "summarize these", notes, code)
    assert r.errors == []
    sent = fake_openai.chat_requests()[-1]["messages"][-1]["content"]
    assert sent == "summarize these\n\n--- notes.md ---\n# Plan\nship on Friday\n\n\n--- main.py ---\nprint('hi')\n"
    r = await run(engine, "and this", attachment("data.csv", b"a,b\x00\x01", "text/csv"))
    assert r.errors and "data.csv is not a text file" in r.errors[0]


async def test_the_api_refusing_an_image_or_vision_is_a_clear_error(engine: Engine, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(InvalidImage(), NoVision())
    r = await run(engine, "look", attachment("a.png", png(8, 8)))
    assert r.errors and "unsupported image" in r.errors[0]
    r = await run(engine, "look", attachment("b.png", png(8, 8)))
    assert r.errors and "image_url is only supported by certain models" in r.errors[0]


async def test_an_animated_gif_is_sent_as_its_first_frame(engine: Engine, fake_openai: FakeOpenAI) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((0, 0, 255), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    r = await run(engine, "x", attachment("a.png", png(8, 8)), attachment("b.gif", out.getvalue(), "image/gif"))
    assert r.errors == []
    parts = image_parts(fake_openai.chat_requests()[-1])
    assert len(parts) == 2 and IMAGE_PART_TOKENS > 0
    first = sent_image(parts[1])
    assert first.format == "PNG" and pixel(first) == (0, 0, 255)  # the API reads still images only


async def test_a_bad_vision_or_speech_setting_fails_at_start_up(make_settings: Any, tmp_path: Path) -> None:
    import pytest

    from bot.errors import ConfigError

    bad = tmp_path / "prices.toml"
    bad.write_text('[chat."mine"]\ninput = 1\noutput = 2\n[chat."mine".vision]\nbase = 85\n')  # no tile
    with pytest.raises(ConfigError, match="vision needs base and tile"):
        PriceTable.load(bad)
    bad.write_text('[speech."my-tts"]\nvoice = "x"\n')
    with pytest.raises(ConfigError, match="speech"):
        PriceTable.load(bad)
    with pytest.raises(ConfigError, match="SPEECH_VOICE"):
        async with open_engine(make_settings(speech_voice="gandalf")):
            pass
    with pytest.raises(ConfigError, match="SPEECH_MODEL"):
        async with open_engine(make_settings(speech_model="no-such-tts")):
            pass


async def test_a_follow_up_in_the_thread_still_sees_the_image_after_a_restart(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    async with open_engine(settings) as engine:
        await run(engine, "what colour is this?", attachment("red.png", png(64, 48)), thread="t1")
    async with open_engine(settings) as engine:  # history, images included, lives in the database
        r = await run(engine, "and what shape?", thread="t1")
    assert r.errors == []
    messages = fake_openai.chat_requests()[-1]["messages"]
    first_question = messages[1]["content"]
    assert isinstance(first_question, list) and first_question[0]["text"] == "what colour is this?\n\n[image: red.png]"
    (part,) = image_parts(fake_openai.chat_requests()[-1])
    assert sent_image(part).size == (64, 48)
    assert messages[-1]["content"] == "and what shape?"  # a message without images stays plain text


async def test_a_thread_whose_model_became_text_only_gets_the_text_without_the_images(
    make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[chat."text-only-1"]\ninput = 1.0\noutput = 2.0\n')
    settings = make_settings(prices_file=prices, allowed_chat_models="text-only-1")
    async with open_engine(settings) as engine:
        await run(engine, "what is this?", attachment("cat.png", png(10, 10)))
        await run(engine, "/model set text-only-1", admin=True)
        r = await run(engine, "tell me more")
    assert r.errors == []
    request = fake_openai.chat_requests()[-1]
    assert request["model"] == "text-only-1" and image_parts(request) == []
    assert request["messages"][1]["content"] == "what is this?\n\n[image: cat.png]"


async def test_a_small_file_claiming_huge_dimensions_is_refused_before_decoding(
    engine: Engine, fake_openai: FakeOpenAI
) -> None:
    import struct
    import zlib

    tiny = bytearray(png(8, 8))
    header = b"IHDR" + struct.pack(">II", 30_000, 30_000) + bytes(tiny[24:29])  # 900 megapixels
    tiny[12:29], tiny[29:33] = header, struct.pack(">I", zlib.crc32(header))
    r = await run(engine, "look", attachment("bomb.png", bytes(tiny)))
    assert r.errors and r.errors[0].startswith("bomb.png has too many pixels to read safely")
    header = b"IHDR" + struct.pack(">II", 9_000, 9_000) + bytes(tiny[24:29])  # 81 MP: past our limit, not Pillow's
    tiny[12:29], tiny[29:33] = header, struct.pack(">I", zlib.crc32(header))
    r = await run(engine, "look", attachment("bomb.png", bytes(tiny)))
    assert r.errors and r.errors[0].startswith("bomb.png has too many pixels to read safely")
    assert fake_openai.chat_requests() == []
