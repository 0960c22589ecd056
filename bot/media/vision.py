"""Images a model will see: checked with Pillow, scaled to what the model reads, counted in tokens.

How many tokens an image costs, and to what size the model scales it, come from the chat model's
`vision` table beside its prices (bot/data/prices.toml); nothing model-specific is written here.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from bot.errors import BadAttachment

Detail = Literal["low", "high", "auto"]

# Formats the chat API reads, by Pillow's name, with the media type of their data URL.
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
# Refuse before decoding anything larger (a "decompression bomb" is a small file of huge dimensions).
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class VisionFormula:
    """One model's image-token rule: tiles (base + tile per 512 px tile) or patches (32 px, capped, × multiplier)."""

    base: int = 0
    tile: int = 0
    patches: int = 0
    multiplier: float = 0.0

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> VisionFormula:
        """The formula from a `[chat."<model>".vision]` table."""
        if "patches" in table:
            return cls(patches=int(table["patches"]), multiplier=float(table["multiplier"]))
        return cls(base=int(table["base"]), tile=int(table["tile"]))

    def scaled_size(self, width: int, height: int, detail: Detail) -> tuple[int, int]:
        """The size the model itself scales an image to before reading it (never larger than given)."""
        if self.patches:
            if _patch_count(width, height) <= self.patches:
                return width, height
            ratio = math.sqrt(32 * 32 * self.patches / (width * height))
            # Shrink a little more so whole patches fit across each side.
            ratio *= min(
                math.floor(width * ratio / 32) / (width * ratio / 32),
                math.floor(height * ratio / 32) / (height * ratio / 32),
            )
            return max(1, int(width * ratio)), max(1, int(height * ratio))
        if detail == "low":
            ratio = min(1.0, 512 / max(width, height))
        else:
            ratio = min(1.0, 2048 / max(width, height))
            short = min(width, height) * ratio
            if short > 768:
                ratio *= 768 / short
        return max(1, round(width * ratio)), max(1, round(height * ratio))

    def tokens(self, width: int, height: int, detail: Detail) -> int:
        """Input tokens of an image of this size (already scaled); `auto` is counted as `high`, the worst case."""
        if self.patches:
            return math.ceil(_patch_count(width, height) * self.multiplier)
        if detail == "low":
            return self.base
        return self.base + self.tile * math.ceil(width / 512) * math.ceil(height / 512)


@dataclass(frozen=True)
class VisionImage:
    """An image ready to send: its bytes (scaled), media type, size, detail and token count."""

    name: str
    media_type: str
    data: bytes
    width: int
    height: int
    detail: Detail
    tokens: int


def data_url(media_type: str, data: bytes) -> str:
    """A data URL of the bytes: the model gets our copy, never a platform's private link."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def sniff(data: bytes) -> str | None:
    """The media type of PNG, JPEG, GIF or WebP bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def prepare(name: str, data: bytes, formula: VisionFormula, detail: Detail) -> VisionImage:
    """Check and scale an image off the event loop; BadAttachment when it is not one we can send."""
    return await asyncio.to_thread(_prepare, name, data, formula, detail)


def _prepare(name: str, data: bytes, formula: VisionFormula, detail: Detail) -> VisionImage:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in MEDIA_TYPES:
                raise BadAttachment(f"{name} is a {image.format} image; send PNG, JPEG, GIF or WebP.")
            if image.width * image.height > MAX_PIXELS:
                raise BadAttachment(f"{name} has too many pixels to read safely ({image.width}x{image.height}); "
                                    "send a smaller image.")  # fmt: skip
            width, height = formula.scaled_size(image.width, image.height, detail)
            if (width, height) == image.size and not getattr(image, "is_animated", False):
                image.load()  # decodes it: a truncated or corrupt file fails here, not at the API
                return VisionImage(name, MEDIA_TYPES[image.format], data, width, height, detail,
                                   formula.tokens(width, height, detail))  # fmt: skip
            # The model would scale it down anyway (or reads only a GIF's first frame): send what it reads.
            frame = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
            if (width, height) != frame.size:
                frame = frame.resize((width, height), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            if image.format == "JPEG":
                frame.save(out, "JPEG", quality=90)
                media_type = "image/jpeg"
            else:
                frame.save(out, "PNG", optimize=True)
                media_type = "image/png"
            return VisionImage(name, media_type, out.getvalue(), width, height, detail,
                               formula.tokens(width, height, detail))  # fmt: skip
    except Image.DecompressionBombError:
        raise BadAttachment(f"{name} has too many pixels to read safely; send a smaller image.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadAttachment(f"{name} could not be read as an image (it may be damaged).") from None


def _patch_count(width: int, height: int) -> int:
    return math.ceil(width / 32) * math.ceil(height / 32)
