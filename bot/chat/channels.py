"""A channel's persona and model, read and changed for the channel a message came from."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.clock import Clock
from bot.messages import IncomingMessage
from storage.records import ChannelSettings


class ChannelSettingsStore(Protocol):
    """The part of the Store that keeps channel settings."""

    async def channel_settings(self, platform: str, team_id: str, channel_id: str) -> ChannelSettings:
        """The channel's persona and model (all None when never set)."""

    async def set_channel_settings(
        self, platform: str, team_id: str, channel_id: str, settings: ChannelSettings, by: str, now: datetime
    ) -> None:
        """Replace the channel's persona and model."""


class Channels:
    """The settings of the channel a message was said in; a change is recorded as made by its author, now."""

    def __init__(self, store: ChannelSettingsStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def settings(self, message: IncomingMessage) -> ChannelSettings:
        """The persona and model of the message's channel."""
        return await self._store.channel_settings(message.platform, message.team_id, message.channel_id)

    async def change(self, message: IncomingMessage, new: ChannelSettings) -> None:
        """Replace the message's channel settings, by its author."""
        await self._store.set_channel_settings(
            message.platform, message.team_id, message.channel_id, new, message.author.id, self._clock()
        )
