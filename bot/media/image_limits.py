"""The bounds on every image the bot decodes (images it looks at, images to edit): how many one message may
carry, how many pixels each may have (read from the header, before anything is decoded), and how many are
decoded at once in this process.

A decompression bomb is a small file of huge dimensions: a 250 KB 8000x8000 PNG decodes to about 800 MB.

Pillow is imported when an image is first opened, not with the bot: a text-only bot never loads it.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from bot.errors import BadAttachment
from bot.settings import Settings

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")

# Images decoded at once in this process (the rest wait their turn). One decode at the default
# MAX_IMAGE_PIXELS (50 Mpx) holds up to about 200 MB (4 bytes a pixel) plus a scaled copy; two at once keep
# a small host's peak under about 0.5 GB however many people send images, and still use both of its cores.
DECODES_AT_ONCE = 2


def unreadable() -> tuple[type[Exception], ...]:
    """What Pillow raises on a file it cannot read as an image (a damaged or truncated one, or not an image)."""
    from PIL import Image, UnidentifiedImageError

    return (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def damaged(name: str) -> BadAttachment:
    """The refusal for a file that cannot be read as an image."""
    return BadAttachment(f"{name} could not be read as an image (it may be damaged).")


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says: its format (Pillow's name) and size, nothing decoded."""

    format: str
    width: int
    height: int


class ImageLimits:
    """One per process, shared by every path that decodes an image (see bot/app.py)."""

    def __init__(
        self, *, max_pixels: int, max_per_message: int, max_bytes: int, decodes_at_once: int = DECODES_AT_ONCE
    ) -> None:
        self.max_pixels = max_pixels
        self.max_per_message = max_per_message
        self.max_bytes = max_bytes
        self._decoding = asyncio.Semaphore(decodes_at_once)

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        """MAX_IMAGE_PIXELS, MAX_IMAGES_PER_MESSAGE and MAX_ATTACHMENT_MB."""
        return cls(
            max_pixels=settings.max_image_pixels,
            max_per_message=settings.max_images_per_message,
            max_bytes=settings.max_attachment_mb * 2**20,
        )

    def check_count(self, count: int) -> None:
        """Refuse a message with more images than one message may carry, before any is read."""
        if count > self.max_per_message:
            raise BadAttachment(
                f"That message has {count:,} images; I read at most {self.max_per_message:,} per message "
                "(MAX_IMAGES_PER_MESSAGE). Send them over several messages."
            )

    def open(self, name: str, data: bytes) -> Image.Image:
        """The image with only its header read; refused when it has more pixels than MAX_IMAGE_PIXELS."""
        from PIL import Image

        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:  # past Pillow's own limit, far past ours
            raise self._too_many_pixels(name, "") from None
        except unreadable():
            raise damaged(name) from None
        if image.width * image.height > self.max_pixels:
            image.close()
            raise self._too_many_pixels(name, f" ({image.width}x{image.height})")
        return image

    def header(self, name: str, data: bytes) -> ImageHeader:
        """Format and size from the header, checked against the pixel limit; nothing is decoded."""
        with self.open(name, data) as image:
            return ImageHeader(str(image.format), image.width, image.height)

    async def decode(self, work: Callable[..., T], *args: object) -> T:
        """Run `work` (which decodes) off the event loop, at most DECODES_AT_ONCE at a time."""
        async with self._decoding:
            return await asyncio.to_thread(work, *args)

    def _too_many_pixels(self, name: str, size: str) -> BadAttachment:
        return BadAttachment(
            f"{name} has too many pixels to read safely{size}; the limit is {self.max_pixels:,} "
            "(MAX_IMAGE_PIXELS). Send a smaller image."
        )
