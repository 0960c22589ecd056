"""/image: drawing, validated against the model's table before anything is spent, metered per image."""

from __future__ import annotations

import io
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from bot.billing.budget import Budget, charge_for
from bot.billing.prices import PriceTable
from bot.errors import BadCommand, ConfigError, ModelUnavailable
from bot.media.image_limits import ImageLimits, damaged, unreadable
from bot.media.inputs import read_image
from bot.messages import Attachment, IncomingMessage
from bot.providers.openai_media import ImageModel
from bot.responder import Responder
from bot.settings import Settings
from storage.ledger_records import Units

IMAGE_USAGE = "/image <prompt> [size] [quality] [n]   e.g. /image a lighthouse at dusk 1536x1024 high 2"
_SIZE = re.compile(r"\d{3,4}x\d{3,4}")


@dataclass(frozen=True)
class ImageModelSpec:
    """What one image model accepts."""

    sizes: tuple[str, ...]
    qualities: tuple[str, ...]
    max_prompt_chars: int
    max_n: int
    b64_param: bool
    edits: bool = False


@dataclass(frozen=True)
class ImageRequest:
    """A validated /image request."""

    prompt: str
    size: str
    quality: str
    n: int


def load_image_models() -> dict[str, ImageModelSpec]:
    """bot/data/image_models.toml."""
    table = tomllib.loads(resources.files("bot.data").joinpath("image_models.toml").read_text("utf-8"))
    return {
        name: ImageModelSpec(
            tuple(e["sizes"]),
            tuple(e["qualities"]),
            e["max_prompt_chars"],
            e["max_n"],
            e["b64_param"],
            e.get("edits", False),
        )
        for name, e in table.items()
    }


class ImageMaker:
    """Draws with IMAGE_MODEL; sends each image as a PNG file."""

    def __init__(
        self, settings: Settings, images: ImageModel, budget: Budget, prices: PriceTable, limits: ImageLimits
    ) -> None:
        specs = load_image_models()
        if settings.image_model not in specs:
            raise ConfigError(f"IMAGE_MODEL: {settings.image_model!r} is not in bot/data/image_models.toml")
        self._spec = specs[settings.image_model]
        if settings.image_size not in self._spec.sizes:
            sizes = ", ".join(self._spec.sizes)
            raise ConfigError(
                f"IMAGE_SIZE: {settings.image_model} cannot draw {settings.image_size!r}; use one of {sizes}"
            )
        if settings.image_quality not in self._spec.qualities:
            qualities = ", ".join(self._spec.qualities)
            quality = settings.image_quality
            raise ConfigError(
                f"IMAGE_QUALITY: {settings.image_model} has no quality {quality!r}; use one of {qualities}"
            )
        self._model = settings.image_model
        self._settings = settings
        self._images = images
        self._budget = budget
        self._prices = prices
        self._limits = limits

    @property
    def spec(self) -> ImageModelSpec:
        """What IMAGE_MODEL accepts (sizes, qualities, how many at once)."""
        return self._spec

    def parse(self, words: Sequence[str], text: str) -> ImageRequest:
        """Trailing size, quality and count words (or size=, quality=, n=) are options; the rest is the prompt."""
        spec, rest = self._spec, list(words)
        size, quality, n = self._settings.image_size, self._settings.image_quality, 1
        while rest:
            key, has_key, value = rest[-1].lower().partition("=")
            if has_key:  # size=…, quality=…, n=…: taken as given, validated below
                if key == "size":
                    size = value
                elif key == "quality":
                    quality = value
                elif key == "n" and value.isdigit():
                    n = int(value)
                elif key == "n":
                    raise BadCommand(f"n={value} is not a number of images.")
                else:
                    break
            elif _SIZE.fullmatch(key):
                size = key
            elif key in spec.qualities:
                quality = key
            elif key.isdigit() and 1 <= int(key) <= spec.max_n:
                n = int(key)
            else:
                break
            rest.pop()
        prompt = " ".join(rest).strip() if len(rest) != len(words) else text.strip()
        if not prompt:
            raise BadCommand(f"Describe the image after /image.\nUsage: {IMAGE_USAGE}")
        if len(prompt) > spec.max_prompt_chars:
            raise BadCommand(
                f"The prompt is {len(prompt):,} characters; {self._model} takes at most {spec.max_prompt_chars:,}."
            )
        if size not in spec.sizes:
            raise BadCommand(f"{self._model} cannot draw {size}; sizes: {', '.join(spec.sizes)}.")
        if quality not in spec.qualities:
            raise BadCommand(f"{self._model} has no quality {quality!r}; qualities: {', '.join(spec.qualities)}.")
        if not 1 <= n <= spec.max_n:
            raise BadCommand(f"Ask for 1 to {spec.max_n} images at a time.")
        return ImageRequest(prompt, size, quality, n)

    async def source(self, attachment: Attachment) -> tuple[str, bytes, str]:
        """The image to edit, checked before anything is spent: (filename, bytes, media type)."""
        if not self._spec.edits:
            raise BadCommand(
                f"{self._model} cannot edit images; send /image without the file to draw a new one, "
                "or ask an admin for an IMAGE_MODEL that edits (gpt-image-1)."
            )
        data = await read_image(attachment, self._limits.max_bytes)
        return await self._limits.decode(_editable, attachment.name, data, self._limits)

    async def draw(
        self,
        message: IncomingMessage,
        responder: Responder,
        request: ImageRequest,
        source: tuple[str, bytes, str] | None = None,
    ) -> None:
        """Reserve the images' price, draw (or edit `source`), settle to the images returned, send them."""
        charge = charge_for(message, "image", self._model)
        each = self._prices.image_cost(self._model, request.quality, request.size, 1)
        verb = "editing" if source else "drawing"
        await responder.show_status(f"{verb} {request.n} image{'s' if request.n > 1 else ''}…")
        async with self._budget.metered(charge, Units(images=request.n), each * request.n) as reservation:
            size, quality, n, b64 = request.size, request.quality, request.n, self._spec.b64_param
            if source is None:
                images = await self._images.generate(
                    request.prompt, model=self._model, size=size, quality=quality, n=n, b64_param=b64
                )
            else:
                images = await self._images.edit(
                    source, request.prompt, model=self._model, size=size, quality=quality, n=n, b64_param=b64
                )
            if not images:
                raise ModelUnavailable("The image model returned no image. Please try again.")
            # Every image returned was drawn and billed, also one whose link then failed to download.
            await reservation.settle(Units(images=len(images)), each * len(images))
        delivered = [image for image in images if not image.lost]
        if not delivered:
            raise ModelUnavailable(f"The image was drawn but could not be fetched: {images[0].lost}. Please try again.")
        for i, image in enumerate(delivered, start=1):
            caption = f"Revised prompt: {image.revised_prompt}" if image.revised_prompt else ""
            extension = image.mime.removeprefix("image/").replace("jpeg", "jpg")
            await responder.send_file(image.png, f"image-{i}.{extension}", image.mime, caption=caption)
        if len(delivered) < len(images):
            why = next(image.lost for image in images if image.lost)
            await responder.send_text(
                f"{len(images) - len(delivered)} of the {len(images)} images could not be fetched: {why}."
            )


def _editable(name: str, data: bytes, limits: ImageLimits) -> tuple[str, bytes, str]:
    """PNG, JPEG and WebP go as they are (decoded once to prove they are whole); a GIF as its first frame
    in PNG (the edit endpoint takes no GIF). Over MAX_IMAGE_PIXELS: refused from the header."""
    from PIL import Image  # loaded by limits.open in any case

    stem = name.rsplit(".", 1)[0] or "image"
    with limits.open(name, data) as image:
        try:
            if image.format == "JPEG":  # the whole stream is read, at an eighth of the size
                image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
            if image.format in ("PNG", "JPEG", "WEBP"):
                return name, data, Image.MIME[image.format]
            out = io.BytesIO()
            image.convert("RGBA").save(out, "PNG")
            return f"{stem}.png", out.getvalue(), "image/png"
        except unreadable():
            raise damaged(name) from None
