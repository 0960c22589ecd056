"""Streaming in the adapters: how soon the first text shows once the model's first token is in, and
how often a streamed message is updated.

The adapters' own reply code (SlackResponder: native streaming, and chat.update where Slack refuses
it; Discord's ChannelResponder: edits) streams a reply of PIECES pieces arriving GAP seconds apart
into the loopback fakes of the Slack Web API and Discord REST, through slack-sdk's and discord.py's
real clients. The fakes stamp each call's arrival. Baseline, in the same run: one plain message
posted through the same client to the same fake, from the call to its arrival; the first-text
ratio is the adapter's delay (first piece to the first call carrying text) over that.
Each adapter streams three replies: the median first-text delay, and `max_updates_in_1s`, the calls
after the first in the busiest second of any of them (the final flush included).
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from slack_sdk.web.async_client import AsyncWebClient

from adapters.discord.adapter import ChannelResponder, intents
from adapters.slack.responder import SlackResponder
from benchmarks.support import clock
from bot.responder import Responder
from tests.fakes.discord_api import CHANNEL, FakeDiscord, logged_in_client, user
from tests.fakes.slack_api import FakeSlack

PIECES = 150
PIECE = "word by "  # 8 characters: about two tokens
GAP = 0.01  # seconds between pieces: ~100 tokens a second, a fast model
ROUND_TRIPS = 20
REPLIES = 3


async def stream_reply(responder: Responder) -> tuple[float, float]:
    """Stream the reply; (time of the first piece, time the stream finished)."""
    stream = responder.stream()
    start = clock()
    for _ in range(PIECES):
        await stream.append(PIECE)
        await asyncio.sleep(GAP)
    await stream.finish()
    return start, clock()


async def measure(
    make_responder: Callable[[], Responder], text_arrivals: Callable[[float, float], list[float]], delivery: float
) -> dict[str, Any]:
    """Stream REPLIES replies one after another; the median first-text delay and the busiest second seen."""
    firsts, busiest, calls = [], 0, []
    for _ in range(REPLIES):
        start, end = await stream_reply(make_responder())
        arrivals = text_arrivals(start, end)
        firsts.append(arrivals[0] - start)
        updates = arrivals[1:]
        busiest = max(busiest, *(sum(1 for t in updates if s <= t < s + 1) for s in updates))
        calls.append(len(arrivals))
    first = statistics.median(firsts)
    return {
        "first_text_ms": round(first * 1000, 2),
        "plain_post_ms": round(delivery * 1000, 2),
        "first_text_ratio": round(first / delivery, 1),
        "calls_per_reply": max(calls),
        "max_updates_in_1s": busiest,
    }


async def median_delivery(post: Callable[[], Awaitable[Any]], arrived: Callable[[], float]) -> float:
    """Median time from posting a plain message to its arrival at the fake."""
    seconds = []
    for _ in range(ROUND_TRIPS):
        start = clock()
        await post()
        seconds.append(arrived() - start)
    return statistics.median(seconds)


SLACK_TEXT_METHODS = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream")


async def slack(native: bool) -> dict[str, Any]:
    async with FakeSlack() as api:
        api.refuse_streaming = not native
        client = AsyncWebClient(token="xoxb-bench", base_url=api.base_url)
        delivery = await median_delivery(lambda: client.chat_postMessage(channel="C1", text="ping"),
                                         lambda: api.calls[-1].at)  # fmt: skip

        def responder() -> Responder:
            return SlackResponder(client, channel="C1", thread_ts="171.1", user_id="U1", team_id="T1",
                                  native_streaming=native)  # fmt: skip

        def arrivals(start: float, end: float) -> list[float]:
            carries_text = ("text", "markdown_text", "chunks")
            return [
                c.at for c in api.calls
                if start <= c.at <= end and c.method in SLACK_TEXT_METHODS and any(c.args.get(k) for k in carries_text)
            ]  # fmt: skip

        return await measure(responder, arrivals, delivery)


async def discord_edits() -> dict[str, Any]:
    async with FakeDiscord() as api:
        base = discord.http.Route.BASE
        discord.http.Route.BASE = api.base
        client = await logged_in_client(intents())
        try:
            channel = client.get_channel(int(CHANNEL))
            assert isinstance(channel, discord.TextChannel)
            delivery = await median_delivery(lambda: channel.send("ping"), lambda: api.calls[-1].at)

            def arrivals(start: float, end: float) -> list[float]:
                return [
                    c.at for c in api.calls
                    if start <= c.at <= end and c.method in ("POST", "PATCH") and (c.json or {}).get("content")
                ]  # fmt: skip

            # Whoever asked: streamed replies are public, so no DM is opened.
            asker = discord.User(state=client._connection, data=user("10", "ann"))  # type: ignore[arg-type]
            return await measure(lambda: ChannelResponder(channel, asker), arrivals, delivery)
        finally:
            await client.close()
            discord.http.Route.BASE = base


async def run() -> dict[str, Any]:
    return {
        "pieces": PIECES,
        "piece_chars": len(PIECE),
        "gap_ms": GAP * 1000,
        "slack_native_stream": await slack(native=True),
        "slack_chat_update": await slack(native=False),
        "discord_edits": await discord_edits(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(asyncio.run(run()), indent=2))
