"""The engine's commands as Discord app commands, with typed options where the set is known.

/image has its size and quality as choices (from the image model's table) and an image to edit,
/ask a voice switch and a file, /search a channel picker and a number of days, /catchup a since
and a public switch, /transcribe a required file; every other command takes its words as one text
option. Whatever the options, the command reaches the engine as the same text a person would type
(`/image a cat size=1024x1024`), so one parser serves every platform.

This module keeps annotations evaluated at definition time (no `from __future__ import
annotations`): discord.py reads the callbacks' annotations, and some are built from settings.
"""

import shlex
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import discord
from discord import app_commands

from bot.catchup import SINCE_FORMATS
from bot.commands import CommandSpec
from bot.commands.search import MAX_DAYS
from bot.media.images import ImageModelSpec

# What a command's options become: (interaction, text for the engine, the attached file or None).
Run = Callable[[discord.Interaction, str, discord.Attachment | None], Awaitable[None]]
AppCommand = app_commands.Command[Any, Any, None]
Callback = Callable[..., Coroutine[Any, Any, None]]


def app_command(spec: CommandSpec, image_spec: ImageModelSpec, run: Run, *, name: str = "") -> AppCommand:
    """The app command for one engine command, registered as `name` (its public name, COMMAND_PREFIX included)."""
    builders = {"ask": _ask, "image": _image, "search": _search, "transcribe": _transcribe, "catchup": _catchup}
    build = builders.get(spec.name, _text)
    callback = build(spec.name, image_spec, run)
    callback.__name__ = name or spec.name
    return app_commands.Command(name=name or spec.name, description=spec.summary[:100], callback=callback)


def _text(name: str, image_spec: ImageModelSpec, run: Run) -> Callback:
    @app_commands.describe(text="what follows the command, as you would type it", file="a file, where one is needed")
    async def callback(
        interaction: discord.Interaction, text: str = "", file: discord.Attachment | None = None
    ) -> None:
        await run(interaction, text, file)

    return callback


def _ask(name: str, image_spec: ImageModelSpec, run: Run) -> Callback:
    @app_commands.describe(question="what to ask", voice="also speak the answer (an audio file)",
                           file="an image to look at or a text file to read")  # fmt: skip
    async def callback(
        interaction: discord.Interaction, question: str, voice: bool = False, file: discord.Attachment | None = None
    ) -> None:
        await run(interaction, f"voice=on {question}" if voice else question, file)

    return callback


def _image(name: str, image_spec: ImageModelSpec, run: Run) -> Callback:
    @app_commands.describe(prompt="what to draw (or how to change the attached image)", size="width x height",
                           quality="more detail costs more", n="how many images",
                           image="an image to edit instead of drawing a new one")  # fmt: skip
    @app_commands.choices(
        size=[app_commands.Choice(name=s, value=s) for s in image_spec.sizes],
        quality=[app_commands.Choice(name=q, value=q) for q in image_spec.qualities],
    )
    async def callback(
        interaction: discord.Interaction,
        prompt: str,
        size: str | None = None,
        quality: str | None = None,
        n: app_commands.Range[int, 1, image_spec.max_n] | None = None,
        image: discord.Attachment | None = None,
    ) -> None:
        options = [f"{key}={value}" for key, value in (("size", size), ("quality", quality), ("n", n)) if value]
        await run(interaction, " ".join([prompt, *options]), image)

    return callback


def _search(name: str, image_spec: ImageModelSpec, run: Run) -> Callback:
    @app_commands.describe(query="what you are looking for", channel="only this channel",
                           days="only the last this many days")  # fmt: skip
    async def callback(
        interaction: discord.Interaction,
        query: str,
        channel: discord.TextChannel | None = None,
        days: app_commands.Range[int, 1, MAX_DAYS] | None = None,
    ) -> None:
        words = [query]
        if channel is not None:
            words.append(f"channel:<#{channel.id}>")
        if days is not None:
            words.append(f"days:{days}")
        await run(interaction, " ".join(words), None)

    return callback


def _catchup(name: str, image_spec: ImageModelSpec, run: Run) -> Callback:
    @app_commands.describe(since=f"from when: {SINCE_FORMATS}; default 24 h",
                           public="post the summary where everyone here sees it")  # fmt: skip
    async def callback(interaction: discord.Interaction, since: str = "", public: bool = False) -> None:
        words = [shlex.quote(since)] if since else []
        if public:
            words.append("public")
        await run(interaction, " ".join(words), None)

    return callback


def _transcribe(name: str, image_spec: ImageModelSpec, run: Run) -> Callback:
    @app_commands.describe(file="the recording (audio or video)", language="its language, e.g. en or de",
                           summary="also summarize it", prompt="names and jargon it contains")  # fmt: skip
    async def callback(
        interaction: discord.Interaction,
        file: discord.Attachment,
        language: app_commands.Range[str, 2, 2] | None = None,
        summary: bool = False,
        prompt: str | None = None,
    ) -> None:
        words = [f"language={language}"] if language else []
        if summary:
            words.append("summary")
        if prompt:
            words.append("prompt=" + shlex.quote(prompt))
        await run(interaction, " ".join(words), file)

    return callback
