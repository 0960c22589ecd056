"""Image bombs and floods: one pixel limit (MAX_IMAGE_PIXELS, read from the header) for every path that decodes
an image, a per-message image cap (MAX_IMAGES_PER_MESSAGE, console included), and refusals that come before
anything is decoded or charged, with true numbers."""

from __future__ import annotations

import functools
import io
import re
import struct
import zlib
from pathlib import Path

from PIL import Image

from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity
from bot.chat.engine import Engine
from bot.messages import Attachment
from bot.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, image_parts
from tests.harness.media import ledger
from tests.harness.vision import attachment, png, run, sent_image


@functools.cache
def blank(width: int, height: int, fmt: str) -> bytes:
    """A real, whole image of one grey (small on disk, `width`x`height` once decoded)."""
    out = io.BytesIO()
    Image.new("L" if fmt != "GIF" else "P", (width, height), 128).save(out, fmt)
    return out.getvalue()


def claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width`x`height`: fine to read the header of, damaged to decode."""
    data = bytearray(png(8, 8))
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29], data[29:33] = header, struct.pack(">I", zlib.crc32(header))
    return bytes(data)


def counted(name: str, data: bytes, reads: list[str]) -> Attachment:
    """An attachment that notes each time it is downloaded."""

    async def read() -> bytes:
        reads.append(name)
        return data

    return Attachment(name=name, content_type="image/png", size=len(data), read=read)


async def test_a_48_megapixel_photo_is_seen_and_8000x8000_is_refused_from_its_header(
    engine: Engine, fake_openai: FakeOpenAI
) -> None:
    r = await run(engine, "what is this?", attachment("phone.jpg", blank(8000, 6000, "JPEG"), "image/jpeg"))
    assert r.errors == []
    (part,) = image_parts(fake_openai.chat_requests()[-1])
    assert sent_image(part).size[0] < 8000  # decoded reduced, scaled to what the model reads
    r = await run(engine, "and this?", attachment("square.png", blank(8000, 8000, "PNG")))
    assert r.errors == [
        "square.png has too many pixels to read safely (8000x8000); the limit is 50,000,000 (MAX_IMAGE_PIXELS). "
        "Send a smaller image."
    ]
    assert len(fake_openai.chat_requests()) == 1


async def test_an_edit_has_the_same_pixel_limit_and_charges_nothing_for_a_refused_image(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    r = await run(engine, "/image make it blue", attachment("huge.gif", blank(8000, 8000, "GIF"), "image/gif"))
    assert r.errors and r.errors[0].startswith("huge.gif has too many pixels to read safely (8000x8000)")
    assert fake_openai.edit_uploads == [] and await ledger(settings) == []
    r = await run(engine, "/image make it blue", attachment("phone.jpg", blank(8000, 6000, "JPEG"), "image/jpeg"))
    assert r.errors == [] and fake_openai.edit_uploads[0]["image"] == ("phone.jpg", blank(8000, 6000, "JPEG"))


async def test_more_images_than_a_message_may_carry_are_refused_before_any_is_read(
    engine: Engine, fake_openai: FakeOpenAI
) -> None:
    reads: list[str] = []
    r = await run(engine, "compare", *(counted(f"p{i}.png", png(8, 8), reads) for i in range(11)))
    assert r.errors == [
        "That message has 11 images; I read at most 10 per message (MAX_IMAGES_PER_MESSAGE). "
        "Send them over several messages."
    ]
    assert reads == [] and fake_openai.chat_requests() == []


async def test_images_that_overflow_the_input_are_refused_with_true_numbers_before_any_is_decoded(
    engine: Engine, fake_openai: FakeOpenAI
) -> None:
    # Seven 2048x2048 headers: 2,465 tokens each for gpt-4.1-mini, 17,255 in all, past the 14,967 the bot reads
    # beside its system prompt.
    # Their pixel data is damaged: had any been decoded, the refusal would say so.
    r = await run(engine, "compare", *(attachment(f"p{i}.png", claiming(2048, 2048)) for i in range(7)))
    [error] = r.errors
    assert error.startswith("Your message is ") and "images 17,255; this bot reads at most 14,967 per message" in error
    assert not re.search(r"-\d", error) and fake_openai.chat_requests() == []


async def test_the_console_has_the_same_image_cap(engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    names = []
    for i in range(11):
        (tmp_path / f"p{i}.png").write_bytes(png(8, 8))
        names.append(f"p{i}.png")
    out = io.StringIO()
    stdin = io.StringIO(f"what differs in {' '.join(names)}?\n")
    adapter = ConsoleAdapter(engine, ConsoleIdentity(), stdin=stdin, stdout=out, files_dir=tmp_path / "files")
    assert await adapter.run() == 0
    assert out.getvalue().startswith("[error] That message has 11 images; I read at most 10 per message")
    assert fake_openai.chat_requests() == []
