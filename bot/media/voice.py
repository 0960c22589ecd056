"""Audio on a message: which attachment is a recording, and turning it into text for the person and the thread.

Shared by /transcribe and by voice messages the engine transcribes on its own (TRANSCRIBE_VOICE_MESSAGES).
"""

from __future__ import annotations

from typing import Protocol

from bot.errors import BadAttachment
from bot.media.transcription import INLINE_CHARS, TRANSCRIBE_USAGE, TranscribeOptions, Transcriber
from bot.messages import Attachment, IncomingMessage
from bot.responder import Responder

AUDIO_EXTENSIONS = (".mp3", ".m4a", ".mp4", ".wav", ".ogg", ".oga", ".opus", ".webm", ".flac", ".aac", ".mpeg", ".mpga")


class TranscriptKeeper(Protocol):
    """Where a transcript goes after it is shown: the conversation (Conversations), and its summary."""

    async def remember(self, message: IncomingMessage, said: str, answer: str) -> None:
        """Store an exchange that did not go through the chat model."""

    async def summarize(self, text: str, message: IncomingMessage, responder: Responder) -> None:
        """Stream a short summary of `text`."""


def audio_attachment(message: IncomingMessage) -> Attachment | None:
    """The message's first attachment that claims to be audio or video (its bytes are checked later)."""
    for attachment in message.attachments:
        kind = attachment.content_type.split(";")[0].strip().lower()
        if kind.startswith(("audio/", "video/")) or attachment.name.lower().endswith(AUDIO_EXTENSIONS):
            return attachment
    return None


async def transcribe_message(
    transcriber: Transcriber,
    keeper: TranscriptKeeper,
    message: IncomingMessage,
    responder: Responder,
    options: TranscribeOptions,
) -> None:
    """Transcribe a message's audio, answer with the text, keep it in the conversation, summarize on request."""
    attachment = audio_attachment(message)
    if attachment is None:
        if message.attachments:
            names = ", ".join(a.name for a in message.attachments)
            raise BadAttachment(f"{names} does not look like audio or video.\nUsage: {TRANSCRIBE_USAGE}")
        raise BadAttachment(f"Attach an audio or video file to transcribe.\nUsage: {TRANSCRIBE_USAGE}")
    transcript = await transcriber.transcribe(message, responder, attachment, options)
    text = transcript.text
    if len(text) > INLINE_CHARS:
        head = text[:INLINE_CHARS].rsplit("\n", 1)[0]
        stem = attachment.name.rsplit(".", 1)[0] or "transcript"
        await responder.send_file(
            text.encode(), f"{stem}.txt", "text/plain", caption=f"{head}\n…(the whole transcript is attached)"
        )
    else:
        await responder.send_text(text)
    await keeper.remember(message, f"[transcribe {attachment.name}]", f"Transcript of {attachment.name}:\n{text}")
    if options.summary:
        await keeper.summarize(text, message, responder)
