"""Images and speech through the official client, with the same error translation as chat."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import openai

from bot.providers.errors import FaultLog, translate_error
from bot.providers.image_links import ImageLinkFailed, fetch_image


@dataclass(frozen=True)
class GeneratedImage:
    """One image: its bytes and the prompt the model actually used, when it says."""

    png: bytes  # PNG from OpenAI; a server that answers with a link may serve JPEG or WebP (see `mime`)
    revised_prompt: str | None
    mime: str = "image/png"
    lost: str | None = None  # drawn (and billed) but its link could not be downloaded: why; `png` is empty


class ImageModel(Protocol):
    """Draws images."""

    async def generate(
        self, prompt: str, *, model: str, size: str, quality: str, n: int, b64_param: bool
    ) -> list[GeneratedImage]:
        """`n` images for `prompt`."""


class SpeechModel(Protocol):
    """Turns audio into text."""

    async def transcribe(
        self, audio: bytes, filename: str, *, model: str, language: str | None, prompt: str | None
    ) -> str:
        """The text spoken in `audio`."""


class OpenAIImages:
    """`images.generate`, base64 out (or links, from gateways). Never retried: a generated image is billed."""

    def __init__(
        self, client: openai.AsyncOpenAI, faults: FaultLog | None = None, *, max_download_bytes: int = 25 * 2**20
    ) -> None:
        self._client = client
        self._faults = faults or FaultLog()
        self._max_download_bytes = max_download_bytes

    async def generate(
        self, prompt: str, *, model: str, size: str, quality: str, n: int, b64_param: bool
    ) -> list[GeneratedImage]:
        """`n` images; dall-e models need response_format=b64_json, gpt-image models always answer in base64."""
        response_format: Literal["b64_json"] | openai.Omit = "b64_json" if b64_param else openai.omit
        try:
            response = await self._client.images.generate(
                prompt=prompt,
                model=model,
                size=size,
                quality=cast(Any, quality),  # validated against bot/data/image_models.toml
                n=n,
                response_format=response_format,
            )
        except openai.APIError as exc:
            error = translate_error(exc, model, "IMAGE_MODEL")
            self._faults.report(error)
            raise error from exc
        images = []
        for item in response.data or []:
            if item.b64_json:
                images.append(GeneratedImage(base64.b64decode(item.b64_json), item.revised_prompt))
            elif item.url:  # LiteLLM's image mocks and some gateways answer with a link even when asked for b64
                try:
                    data, mime = await fetch_image(item.url, self._max_download_bytes, self._client.timeout)
                except ImageLinkFailed as exc:
                    images.append(GeneratedImage(b"", item.revised_prompt, lost=str(exc)))
                else:
                    images.append(GeneratedImage(data, item.revised_prompt, mime))
        return images


class OpenAITranscriber:
    """`audio.transcriptions.create` on one file (a part of a longer recording)."""

    def __init__(self, client: openai.AsyncOpenAI, faults: FaultLog | None = None) -> None:
        self._client = client
        self._faults = faults or FaultLog()

    async def transcribe(
        self, audio: bytes, filename: str, *, model: str, language: str | None, prompt: str | None
    ) -> str:
        """The text of one audio file."""
        try:
            result = await self._client.audio.transcriptions.create(
                file=(filename, audio),
                model=model,
                language=language or openai.omit,
                prompt=prompt or openai.omit,
                response_format="text",
            )
        except openai.APIError as exc:
            error = translate_error(exc, model, "TRANSCRIBE_MODEL")
            self._faults.report(error)
            raise error from exc
        return str(result).strip()
