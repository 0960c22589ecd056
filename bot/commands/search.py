"""/search: the team's earlier conversations, by meaning, limited to what the asker may see."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.commands.registry import CommandContext, CommandSpec
from bot.errors import BadCommand

SEARCH_USAGE = "/search <what you are looking for> [channel:#channel|here] [days:N]"
MAX_DAYS = 3_650
SNIPPET_CHARS = 240
# A channel as platforms write it: <#C123>, <#C123|name> (Slack), <#123> (Discord), or a bare id.
_CHANNEL = re.compile(r"<#(?P<mention>[^>|]+)(?:\|[^>]*)?>|(?P<bare>[A-Za-z0-9_.:-]+)")


async def search(ctx: CommandContext) -> None:
    """Top matches across the conversations of channels the asker can read; answered privately."""
    services, message = ctx.services, ctx.message
    memory = services.memory
    if not memory.enabled:
        raise BadCommand(f"Search is off on this bot ({memory.off_reason}).")
    words, channel, days = [], None, None
    for word in ctx.command.args:
        key, has_value, value = word.partition(":")
        if has_value and key.lower() == "channel":
            channel = _channel(value, message.channel_id)
        elif has_value and key.lower() == "days":
            days = _days(value)
        else:
            words.append(word)
    query = " ".join(words).strip()
    if not query:
        raise SEARCH.bad_usage("Say what to look for after /search.")
    if channel is not None and not await memory.searchable_channels(message, only=channel):
        await ctx.responder.send_text("Nothing you can see in that channel has been remembered yet.")
        return
    since = services.clock() - timedelta(days=days) if days is not None else None
    hits = await memory.search(message, query, channel=channel, since=since, limit=services.settings.search_results)
    if not hits:
        # Only matches at least SEARCH_MIN_SIMILARITY come back: unrelated messages are not shown as results.
        await ctx.responder.send_text(f"No good matches for “{query}” in the conversations you can see.")
        return
    lines = [f"Top matches for “{query}”:"]
    for n, hit in enumerate(hits, start=1):
        who = hit.author_name or ("the bot" if hit.role == "assistant" else "someone")
        snippet = " ".join(hit.content.split())
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[: SNIPPET_CHARS - 1] + "…"
        link = await message.directory.link(hit.channel_id, hit.thread_id, hit.platform_message_id)
        where = f" {link}" if link else f" (channel {hit.channel_id})"
        lines.append(f"{n}. {hit.created_at:%Y-%m-%d} · {who} · {hit.score:.2f}{where}\n    {snippet}")
    await ctx.responder.send_text("\n".join(lines))


def _channel(value: str, here: str) -> str:
    if value.lower() == "here":
        return here
    match = _CHANNEL.fullmatch(value.strip())
    if match is None or value.startswith("#"):
        raise SEARCH.bad_usage(f"{value!r} is not a channel: mention it (#channel picked from the list) or say here.")
    return match.group("mention") or match.group("bare")


def _days(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_DAYS:
        raise SEARCH.bad_usage(f"days:{value} must be a whole number of days from 1 to {MAX_DAYS:,}.")
    return int(value)


SEARCH = CommandSpec(
    "search", SEARCH_USAGE, "find earlier conversations by meaning (only what you can see)", search, private=True
)
