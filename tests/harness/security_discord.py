"""A Discord DM as the gateway delivers it, for the private-answer and security tests."""

from __future__ import annotations

from typing import Any

import discord

from tests.fakes.discord_api import (
    message_payload,
    user,
)
from tests.harness.discord import Harness


def dm_from(harness: Harness, user_id: str, content: str) -> discord.Message:
    """A message in the DM between `user_id` and the bot, as the gateway delivers it (no guild)."""
    state = harness.client._connection
    assert harness.client.user is not None
    person = user(user_id, f"user{user_id}")
    data: Any = {"id": f"9{user_id}", "type": 1, "recipients": [person], "last_message_id": None}
    channel = discord.DMChannel(me=harness.client.user, state=state, data=data)
    payload = message_payload(str(next(harness.ids)), str(channel.id), content, author=person)
    return state.create_message(channel=channel, data=payload)  # type: ignore[arg-type]
