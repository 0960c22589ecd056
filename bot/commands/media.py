"""/image and /transcribe."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.commands.registry import CommandContext, CommandSpec
from bot.errors import BadAttachment
from bot.media.images import IMAGE_USAGE
from bot.media.inputs import is_image
from bot.media.speech import SPEAK_USAGE, parse_voice
from bot.media.transcription import INLINE_CHARS, TRANSCRIBE_USAGE, TranscribeOptions, parse_options
from bot.messages import Attachment, IncomingMessage
from bot.responder import Responder

if TYPE_CHECKING:
    from bot.chat.engine import Engine

AUDIO_EXTENSIONS = (".mp3", ".m4a", ".mp4", ".wav", ".ogg", ".oga", ".opus", ".webm", ".flac", ".aac", ".mpeg", ".mpga")


def audio_attachment(message: IncomingMessage) -> Attachment | None:
    """The message's first attachment that claims to be audio or video (its bytes are checked later)."""
    for attachment in message.attachments:
        kind = attachment.content_type.split(";")[0].strip().lower()
        if kind.startswith(("audio/", "video/")) or attachment.name.lower().endswith(AUDIO_EXTENSIONS):
            return attachment
    return None


async def image(ctx: CommandContext) -> None:
    """Draw and upload; with an attached image, edit it as the prompt asks."""
    request = ctx.engine.images.parse(ctx.command.args, ctx.command.text)
    attachment = next((a for a in ctx.message.attachments if is_image(a)), None)
    if attachment is None and ctx.message.attachments:
        names = ", ".join(a.name for a in ctx.message.attachments)
        raise BadAttachment(f"{names} is not an image; /image edits a PNG, JPEG, GIF or WebP.\nUsage: {IMAGE_USAGE}")
    source = await ctx.engine.images.source(attachment) if attachment is not None else None
    await ctx.engine.images.draw(ctx.message, ctx.responder, request, source)


async def speak(ctx: CommandContext) -> None:
    """Speak the text and upload the audio."""
    voice, text = parse_voice(ctx.command.args, ctx.command.text)
    chosen = ctx.engine.speaker.check(text, voice)
    await ctx.engine.speaker.speak(ctx.message, ctx.responder, text, chosen)


async def transcribe(ctx: CommandContext) -> None:
    """Transcribe the attached audio."""
    options = parse_options(ctx.command.args)
    await transcribe_message(ctx.engine, ctx.message, ctx.responder, options)


async def transcribe_message(
    engine: Engine, message: IncomingMessage, responder: Responder, options: TranscribeOptions
) -> None:
    """Transcribe a message's audio, answer with the text, keep it in the conversation, summarize on request."""
    attachment = audio_attachment(message)
    if attachment is None:
        if message.attachments:
            names = ", ".join(a.name for a in message.attachments)
            raise BadAttachment(f"{names} does not look like audio or video.\nUsage: {TRANSCRIBE_USAGE}")
        raise BadAttachment(f"Attach an audio or video file to transcribe.\nUsage: {TRANSCRIBE_USAGE}")
    transcript = await engine.transcriber.transcribe(message, responder, attachment, options)
    text = transcript.text
    if len(text) > INLINE_CHARS:
        head = text[:INLINE_CHARS].rsplit("\n", 1)[0]
        stem = attachment.name.rsplit(".", 1)[0] or "transcript"
        await responder.send_file(
            text.encode(), f"{stem}.txt", "text/plain", caption=f"{head}\n…(the whole transcript is attached)"
        )
    else:
        await responder.send_text(text)
    await engine.conversations.remember(
        message, f"[transcribe {attachment.name}]", f"Transcript of {attachment.name}:\n{text}"
    )
    if options.summary:
        await engine.conversations.summarize(text, message, responder)


IMAGE = CommandSpec("image", IMAGE_USAGE, "draw an image (uploaded as a PNG); attach one to edit it", image)
TRANSCRIBE = CommandSpec(
    "transcribe", TRANSCRIBE_USAGE, "turn attached speech into text; long audio is split", transcribe
)

SPEAK = CommandSpec("speak", SPEAK_USAGE, "say the text aloud (uploaded as an MP3)", speak)

MEDIA_COMMANDS = (IMAGE, SPEAK, TRANSCRIBE)
