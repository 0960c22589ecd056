"""Images a model will see: checked with Pillow, scaled to what the model reads, counted in tokens.

How many tokens an image costs, and to what size the model scales it, come from the chat model's
`vision` table beside its prices (bot/data/prices.toml); nothing model-specific is written here.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bot.errors import BadAttachment
from bot.media.image_limits import ImageHeader, ImageLimits, damaged, unreadable

if TYPE_CHECKING:
    from PIL import Image

Detail = Literal["low", "high", "auto"]

# Formats the chat API reads, by Pillow's name, with the media type of their data URL.
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


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


async def prepare(name: str, data: bytes, formula: VisionFormula, detail: Detail, limits: ImageLimits) -> VisionImage:
    """Check and scale an image off the event loop (within the decode limit); BadAttachment when it is not
    one we can send."""
    return await limits.decode(_prepare, name, data, formula, detail, limits)


def image_tokens(header: ImageHeader, formula: VisionFormula, detail: Detail) -> int:
    """What an image of this header costs the model, known before it is decoded."""
    return formula.tokens(*formula.scaled_size(header.width, header.height, detail), detail)


def _prepare(name: str, data: bytes, formula: VisionFormula, detail: Detail, limits: ImageLimits) -> VisionImage:
    with limits.open(name, data) as image:
        if image.format not in MEDIA_TYPES:
            raise BadAttachment(f"{name} is a {image.format} image; send PNG, JPEG, GIF or WebP.")
        try:
            return _scaled(name, data, image, formula, detail)
        except unreadable():
            raise damaged(name) from None


def _scaled(name: str, data: bytes, image: Image.Image, formula: VisionFormula, detail: Detail) -> VisionImage:
    from PIL import Image  # already loaded: `image` is one

    width, height = formula.scaled_size(image.width, image.height, detail)
    fmt = str(image.format)
    if (width, height) == image.size and not getattr(image, "is_animated", False):
        image.load()  # decodes it: a truncated or corrupt file fails here, not at the API
        return VisionImage(name, MEDIA_TYPES[fmt], data, width, height, detail, formula.tokens(width, height, detail))
    # The model would scale it down anyway (or reads only a GIF's first frame): send what it reads.
    if fmt == "JPEG":
        image.draft("RGB", (width, height))  # decode at 1/2, 1/4 or 1/8 size, never below the target
    wanted = "RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB"
    frame = image if image.mode == wanted else image.convert(wanted)
    if (width, height) != frame.size:
        frame = frame.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    if fmt == "JPEG":
        frame.save(out, "JPEG", quality=90)
        media_type = "image/jpeg"
    else:
        frame.save(out, "PNG", optimize=True)
        media_type = "image/png"
    return VisionImage(name, media_type, out.getvalue(), width, height, detail, formula.tokens(width, height, detail))


def _patch_count(width: int, height: int) -> int:
    return math.ceil(width / 32) * math.ceil(height / 32)
