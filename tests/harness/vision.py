"""Images made in the tests (PNG), attachments of them, and what the fake model was sent."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from bot.chat.engine import Engine
from bot.messages import Attachment
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message


def png(width: int, height: int, color: tuple[int, int, int] = (200, 30, 30), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, fmt)
    return out.getvalue()


def attachment(name: str, data: bytes, content_type: str = "image/png", size: int | None = None) -> Attachment:
    async def read() -> bytes:
        return data

    return Attachment(name=name, content_type=content_type, size=len(data) if size is None else size, read=read)


async def run(engine: Engine, text: str, *files: Attachment, **who: Any) -> RecordingResponder:
    responder = RecordingResponder()
    await engine.handle(message(text, attachments=files, **who), responder)
    return responder


def sent_image(part: dict[str, Any]) -> Image.Image:
    url = part["image_url"]["url"]
    assert url.startswith("data:image/")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
