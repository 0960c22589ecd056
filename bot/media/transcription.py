"""/transcribe: check the file, measure it, split long audio, transcribe the parts, charge honestly."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.billing.budget import Budget, charge_for
from bot.billing.prices import PriceTable
from bot.errors import BadAttachment, BadCommand, ModelError
from bot.media import audio
from bot.messages import Attachment, IncomingMessage
from bot.providers.openai_media import SpeechModel
from bot.responder import Responder
from bot.settings import Settings
from storage.ledger_records import Units

log = logging.getLogger(__name__)

TRANSCRIBE_USAGE = '/transcribe [language=xx] [summary] [prompt="names, jargon"]  (with an audio or video file)'
API_FILE_LIMIT = 24 * 1024 * 1024  # the API takes 25 MB; keep a margin
INLINE_CHARS = 3_000
_LANGUAGE = re.compile(r"[a-z]{2}")


@dataclass(frozen=True)
class TranscribeOptions:
    """What /transcribe was asked for."""

    language: str | None = None
    summary: bool = False
    prompt: str | None = None


@dataclass(frozen=True)
class Transcript:
    """The joined text, and whether every part made it."""

    text: str
    complete: bool
    seconds_done: float
    seconds_total: float


def parse_options(words: Sequence[str]) -> TranscribeOptions:
    """`language=de`, `summary`, `prompt=...`; anything else is a usage error."""
    language, summary, prompt = None, False, None
    for word in words:
        key, has_value, value = word.partition("=")
        key = key.lower()
        if key == "language" and has_value:
            if not _LANGUAGE.fullmatch(value.lower()):
                raise BadCommand(f"language={value} is not a two-letter ISO-639-1 code like en, de, fr.")
            language = value.lower()
        elif key == "summary" and (not has_value or value.lower() in ("yes", "true", "1")):
            summary = True
        elif key == "prompt" and has_value:
            prompt = value
        else:
            raise BadCommand(
                f"/transcribe takes language=, summary and prompt=, not {word!r}; the audio comes as an attached file."
                f"\nUsage: {TRANSCRIBE_USAGE}"
            )
    return TranscribeOptions(language, summary, prompt)


class Transcriber:
    """Speech to text with TRANSCRIBE_MODEL, metered in audio minutes."""

    def __init__(self, settings: Settings, speech: SpeechModel, budget: Budget, prices: PriceTable) -> None:
        self._settings = settings
        self._speech = speech
        self._budget = budget
        self._prices = prices

    async def transcribe(
        self, message: IncomingMessage, responder: Responder, attachment: Attachment, options: TranscribeOptions
    ) -> Transcript:
        """Check, measure and (when long or large) split the file; transcribe the parts in order."""
        s = self._settings
        if attachment.size > s.transcribe_max_mb * 1024 * 1024:
            raise BadAttachment(
                f"{attachment.name} is {attachment.size / 2**20:.0f} MB; the limit is {s.transcribe_max_mb} MB."
            )
        data = await attachment.read()
        demuxer = audio.check_bytes(data, attachment.name)
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="teambot-audio-"))
        try:
            # The original name (sanitized) travels with the file: the API guesses the format from it.
            source = folder / (re.sub(r"[^A-Za-z0-9._-]", "_", Path(attachment.name).name)[-100:] or "audio")
            await asyncio.to_thread(source.write_bytes, data)
            await responder.show_status("measuring the audio…")
            seconds = await audio.duration(source, attachment.name, demuxer)
            if seconds > s.transcribe_max_minutes * 60:
                limit = s.transcribe_max_minutes
                raise BadAttachment(
                    f"{attachment.name} is {seconds / 60:.1f} minutes long; the limit is {limit} minutes."
                )
            return await self._metered(message, responder, source, demuxer, data, seconds, options, folder)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    async def _metered(
        self,
        message: IncomingMessage,
        responder: Responder,
        source: Path,
        demuxer: str,
        data: bytes,
        seconds: float,
        options: TranscribeOptions,
        folder: Path,
    ) -> Transcript:
        model = self._settings.transcribe_model
        charge = charge_for(message, "audio", model)
        units = Units(audio_ms=math.ceil(seconds * 1000))
        parts, bounds = await self._parts(source, demuxer, data, seconds, folder)
        async with self._budget.metered(charge, units, self._prices.audio_cost(model, seconds)) as reservation:
            texts, error = await self._transcribe_parts(parts, responder, options)
            done = sum(end - start for (start, end), text in zip(bounds, texts, strict=True) if text is not None)
            if any(text is not None for text in texts):
                # Charge what was transcribed, nothing more: parts that failed are not billed.
                await reservation.settle(Units(audio_ms=math.ceil(done * 1000)), self._prices.audio_cost(model, done))
        joined = "\n\n".join(
            text if text is not None else f"[part {i} of {len(texts)} was not transcribed]"
            for i, text in enumerate(texts, start=1)
        )
        if error is not None:
            if all(text is None for text in texts):
                raise error
            await responder.send_error(
                f"Transcribed {done / 60:.1f} of {seconds / 60:.1f} minutes before the model failed: {error.message} "
                "You were charged only for the parts that were transcribed."
            )
        return Transcript(joined, error is None, done, seconds)

    async def _parts(
        self, source: Path, demuxer: str, data: bytes, seconds: float, folder: Path
    ) -> tuple[list[Path], list[tuple[float, float]]]:
        """The files to send and the (start, end) seconds each covers: the original when it is small and short."""
        chunk = self._settings.transcribe_chunk_seconds
        if seconds <= chunk and len(data) <= API_FILE_LIMIT:
            return [source], [(0.0, seconds)]
        quiet = await audio.silences(source, demuxer) if seconds > chunk else []
        cuts = audio.plan_cuts(seconds, chunk, quiet)
        out = folder / "parts"
        await asyncio.to_thread(out.mkdir)
        parts = await audio.split(source, demuxer, cuts, out)
        edges = [0.0, *cuts, seconds]
        bounds = list(itertools.pairwise(edges))
        if len(parts) != len(bounds):
            log.warning("ffmpeg made %d parts for %d planned cuts", len(parts), len(cuts))
            bounds = [(seconds * i / len(parts), seconds * (i + 1) / len(parts)) for i in range(len(parts))]
        return parts, bounds

    async def _transcribe_parts(
        self, parts: list[Path], responder: Responder, options: TranscribeOptions
    ) -> tuple[list[str | None], ModelError | None]:
        """Transcribe with bounded concurrency; on the first failure, stop starting new parts."""
        gate = asyncio.Semaphore(self._settings.transcribe_concurrency)
        texts: list[str | None] = [None] * len(parts)
        failure: list[ModelError] = []

        async def one(index: int, part: Path) -> None:
            async with gate:
                if failure:
                    return
                if len(parts) > 1:
                    await responder.show_status(f"transcribing part {index + 1} of {len(parts)}…")
                payload = await asyncio.to_thread(part.read_bytes)
                try:
                    texts[index] = await self._speech.transcribe(
                        payload, part.name, model=self._settings.transcribe_model, language=options.language,
                        prompt=options.prompt,
                    )  # fmt: skip
                except ModelError as exc:
                    failure.append(exc)

        await asyncio.gather(*(one(i, part) for i, part in enumerate(parts)))
        return texts, failure[0] if failure else None
