"""Images and speech through the official client, with the same error translation as chat."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import openai
from openai.types import ImagesResponse

from bot.net.outbound import FetchPolicy
from bot.providers.errors import FaultLog
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

    async def edit(
        self, image: tuple[str, bytes, str], prompt: str, *, model: str, size: str, quality: str, n: int,
        b64_param: bool,
    ) -> list[GeneratedImage]:  # fmt: skip
        """`n` edits of `image` (filename, bytes, media type) as `prompt` asks."""


class SpeechModel(Protocol):
    """Turns audio into text."""

    async def transcribe(
        self, audio: bytes, filename: str, *, model: str, language: str | None, prompt: str | None
    ) -> str:
        """The text spoken in `audio`."""


class OpenAIImages:
    """`images.generate`, base64 out (or links, from gateways). Never retried: a generated image is billed."""

    def __init__(self, client: openai.AsyncOpenAI, links: FetchPolicy, faults: FaultLog | None = None) -> None:
        self._client = client
        self._faults = faults or FaultLog()
        self._links = links

    async def generate(
        self, prompt: str, *, model: str, size: str, quality: str, n: int, b64_param: bool
    ) -> list[GeneratedImage]:
        """`n` images; dall-e models need response_format=b64_json, gpt-image models always answer in base64."""
        response_format: Literal["b64_json"] | openai.Omit = "b64_json" if b64_param else openai.omit
        with self._faults.translating(model, "IMAGE_MODEL"):
            response = await self._client.images.generate(
                prompt=prompt,
                model=model,
                size=size,
                quality=cast(Any, quality),  # validated against bot/data/image_models.toml
                n=n,
                response_format=response_format,
            )
        return await self._decoded(response)

    async def edit(
        self, image: tuple[str, bytes, str], prompt: str, *, model: str, size: str, quality: str, n: int,
        b64_param: bool,
    ) -> list[GeneratedImage]:  # fmt: skip
        """`images.edit` with one source image; never retried either (an edit is billed like a drawing)."""
        response_format: Literal["b64_json"] | openai.Omit = "b64_json" if b64_param else openai.omit
        with self._faults.translating(model, "IMAGE_MODEL"):
            response = await self._client.images.edit(
                image=image,
                prompt=prompt,
                model=model,
                size=cast(Any, size),  # validated against bot/data/image_models.toml
                quality=cast(Any, quality),
                n=n,
                response_format=response_format,
            )
        return await self._decoded(response)

    async def _decoded(self, response: ImagesResponse) -> list[GeneratedImage]:
        images = []
        for item in response.data or []:
            if item.b64_json:
                images.append(GeneratedImage(base64.b64decode(item.b64_json), item.revised_prompt))
            elif item.url:  # LiteLLM's image mocks and some gateways answer with a link even when asked for b64
                try:
                    data, mime = await fetch_image(item.url, self._links)
                except ImageLinkFailed as exc:
                    images.append(GeneratedImage(b"", item.revised_prompt, lost=str(exc)))
                else:
                    images.append(GeneratedImage(data, item.revised_prompt, mime))
        return images


class SpeechSynth(Protocol):
    """Turns text into speech."""

    async def speak(self, text: str, *, model: str, voice: str) -> bytes:
        """MP3 audio of `text` spoken in `voice`."""


class OpenAISpeech:
    """`audio.speech.create`, MP3 out. Never retried: the speech is billed once made."""

    def __init__(self, client: openai.AsyncOpenAI, faults: FaultLog | None = None) -> None:
        self._client = client
        self._faults = faults or FaultLog()

    async def speak(self, text: str, *, model: str, voice: str) -> bytes:
        """The MP3 bytes of `text` spoken."""
        with self._faults.translating(model, "SPEECH_MODEL"):
            response = await self._client.audio.speech.create(
                input=text, model=model, voice=voice, response_format="mp3"
            )
        return response.content


class OpenAITranscriber:
    """`audio.transcriptions.create` on one file (a part of a longer recording)."""

    def __init__(self, client: openai.AsyncOpenAI, faults: FaultLog | None = None) -> None:
        self._client = client
        self._faults = faults or FaultLog()

    async def transcribe(
        self, audio: bytes, filename: str, *, model: str, language: str | None, prompt: str | None
    ) -> str:
        """The text of one audio file."""
        with self._faults.translating(model, "TRANSCRIBE_MODEL"):
            result = await self._client.audio.transcriptions.create(
                file=(filename, audio),
                model=model,
                language=language or openai.omit,
                prompt=prompt or openai.omit,
                response_format="text",
            )
        return str(result).strip()
