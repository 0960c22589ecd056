"""/image and /transcribe."""

from __future__ import annotations

from bot.commands.registry import CommandContext, CommandSpec
from bot.errors import BadAttachment
from bot.media.images import IMAGE_USAGE
from bot.media.inputs import is_image
from bot.media.speech import SPEAK_USAGE, parse_voice
from bot.media.transcription import TRANSCRIBE_USAGE, parse_options
from bot.media.voice import transcribe_message


async def image(ctx: CommandContext) -> None:
    """Draw and upload; with an attached image, edit it as the prompt asks."""
    request = ctx.services.images.parse(ctx.command.args, ctx.command.text)
    attachment = next((a for a in ctx.message.attachments if is_image(a)), None)
    if attachment is None and ctx.message.attachments:
        names = ", ".join(a.name for a in ctx.message.attachments)
        raise BadAttachment(f"{names} is not an image; /image edits a PNG, JPEG, GIF or WebP.\nUsage: {IMAGE_USAGE}")
    source = await ctx.services.images.source(attachment) if attachment is not None else None
    await ctx.services.images.draw(ctx.message, ctx.responder, request, source)


async def speak(ctx: CommandContext) -> None:
    """Speak the text and upload the audio."""
    voice, text = parse_voice(ctx.command.args, ctx.command.text)
    chosen = ctx.services.speaker.check(text, voice)
    await ctx.services.speaker.speak(ctx.message, ctx.responder, text, chosen)


async def transcribe(ctx: CommandContext) -> None:
    """Transcribe the attached audio."""
    options = parse_options(ctx.command.args)
    services = ctx.services
    await transcribe_message(services.transcriber, services.conversations, ctx.message, ctx.responder, options)


IMAGE = CommandSpec("image", IMAGE_USAGE, "draw an image (uploaded as a PNG); attach one to edit it", image)
TRANSCRIBE = CommandSpec(
    "transcribe", TRANSCRIBE_USAGE, "turn attached speech into text; long audio is split", transcribe
)

SPEAK = CommandSpec("speak", SPEAK_USAGE, "say the text aloud (uploaded as an MP3)", speak)

MEDIA_COMMANDS = (IMAGE, SPEAK, TRANSCRIBE)
