"""/speak and /ask voice=…: text to speech with SPEECH_MODEL, checked before spending, metered as priced."""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bot.billing.budget import Budget, charge_for
from bot.billing.prices import PriceTable
from bot.errors import BadAttachment, BadCommand, ConfigError, ModelUnavailable
from bot.media import audio
from bot.messages import IncomingMessage
from bot.providers.openai_media import SpeechSynth
from bot.providers.tokens import TokenCounter
from bot.responder import Responder
from bot.settings import Settings
from storage.ledger_records import Units

log = logging.getLogger(__name__)

SPEAK_USAGE = "/speak [voice=<name>] <text>   e.g. /speak voice=nova Good morning, team!"


@dataclass(frozen=True)
class SpeechModelSpec:
    """What one speech model accepts (bot/data/speech_models.toml)."""

    max_chars: int
    voices: tuple[str, ...]
    slowest_chars_per_second: float


def load_speech_models() -> dict[str, SpeechModelSpec]:
    """bot/data/speech_models.toml."""
    table = tomllib.loads(resources.files("bot.data").joinpath("speech_models.toml").read_text("utf-8"))
    return {
        name: SpeechModelSpec(e["max_chars"], tuple(e["voices"]), float(e["slowest_chars_per_second"]))
        for name, e in table.items()
    }


def parse_voice(words: Sequence[str], text: str) -> tuple[str | None, str]:
    """A leading or trailing `voice=<name>` (`voice=on` for the default voice) and the rest of the text."""
    rest = list(words)
    voice: str | None = None
    for index in (0, -1):
        if rest and rest[index].lower().startswith("voice="):
            voice = rest.pop(index).split("=", 1)[1].lower() or "on"
            return voice, " ".join(rest)
    return voice, text


class Speaker:
    """Speaks text with SPEECH_MODEL and uploads the MP3."""

    def __init__(
        self, settings: Settings, synth: SpeechSynth, budget: Budget, prices: PriceTable, tokens: TokenCounter
    ) -> None:
        specs = load_speech_models()
        if settings.speech_model not in specs:
            raise ConfigError(f"SPEECH_MODEL: {settings.speech_model!r} is not in bot/data/speech_models.toml")
        self._spec = specs[settings.speech_model]
        if settings.speech_voice not in self._spec.voices:
            raise ConfigError(
                f"SPEECH_VOICE: {settings.speech_model} has no voice {settings.speech_voice!r}; "
                f"voices: {', '.join(self._spec.voices)}"
            )
        self._model = settings.speech_model
        self._voice = settings.speech_voice
        self._synth = synth
        self._budget = budget
        self._prices = prices
        self._tokens = tokens

    @property
    def spec(self) -> SpeechModelSpec:
        """What SPEECH_MODEL accepts."""
        return self._spec

    def check(self, text: str, voice: str | None) -> str:
        """The voice to use; BadCommand for empty or too-long text or an unknown voice (nothing spent yet)."""
        if not text.strip():
            raise BadCommand(f"Write the text to speak.\nUsage: {SPEAK_USAGE}")
        if len(text) > self._spec.max_chars:
            raise BadCommand(
                f"That is {len(text):,} characters; {self._model} speaks at most {self._spec.max_chars:,} at a time."
            )
        chosen = self._voice if voice in (None, "on", "yes", "true") else voice
        if chosen not in self._spec.voices:
            raise BadCommand(f"{self._model} has no voice {voice!r}; voices: {', '.join(self._spec.voices)}.")
        return chosen

    async def speak(self, message: IncomingMessage, responder: Responder, text: str, voice: str) -> None:
        """Reserve the worst case, speak, settle to the measured audio, upload it as an MP3."""
        chars, text_tokens = len(text), self._tokens.count(text)
        worst_seconds = chars / self._spec.slowest_chars_per_second
        charge = charge_for(message, "audio", self._model)
        worst = self._prices.speech_cost(self._model, chars=chars, text_tokens=text_tokens, seconds=worst_seconds)
        units = Units(input_tokens=text_tokens, audio_ms=math.ceil(worst_seconds * 1000))
        await responder.show_status("speaking…")
        async with self._budget.metered(charge, units, worst) as reservation:
            speech = await self._synth.speak(text, model=self._model, voice=voice)
            if not speech:
                raise ModelUnavailable("The speech model returned no audio. Please try again.")
            seconds = await _measured(speech)
            if seconds is None:  # the provider billed it all the same: charge the worst case, never less
                seconds = worst_seconds
            cost = self._prices.speech_cost(self._model, chars=chars, text_tokens=text_tokens, seconds=seconds)
            await reservation.settle(Units(input_tokens=text_tokens, audio_ms=math.ceil(seconds * 1000)), cost)
        await responder.send_file(speech, "speech.mp3", "audio/mpeg")


async def _measured(speech: bytes) -> float | None:
    """Seconds of audio in the MP3, or None when ffmpeg cannot read it."""
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="teambot-speech-"))
    try:
        path = folder / "speech.mp3"
        await asyncio.to_thread(path.write_bytes, speech)
        demuxer = audio.check_bytes(speech, "the spoken reply")  # the container it really is, or BadAttachment
        return await audio.duration(path, "the spoken reply", demuxer)
    except BadAttachment:
        log.warning("could not measure the speech model's audio; charged at the worst case")
        return None
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
