"""Slack's assistant pane: which channel a person is viewing beside each assistant thread, behind a protocol.

Kept in the bot's database (storage/sql/assistant_threads.py) rather than in Slack's message metadata: the
thread's context must survive restarts and be shared by every worker, and reading it back from Slack would
cost a conversations.replies call per question (one a minute for some apps).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class PaneThread:
    """One assistant thread: its DM channel and thread, the workspace and the person it belongs to."""

    channel_id: str
    thread_ts: str
    team_id: str = ""
    user_id: str = ""


@dataclass(frozen=True)
class ViewedChannel:
    """The channel a person has open beside the pane (Slack's thread context)."""

    channel_id: str
    team_id: str = ""
    enterprise_id: str = ""


class AssistantThreads(Protocol):
    """The viewed channel of each assistant thread, and whether it has its title yet."""

    async def remember(self, thread: PaneThread, viewed: ViewedChannel | None, now: datetime) -> None:
        """Store (or replace) what the person views beside the thread (None: no channel)."""

    async def viewed(self, channel_id: str, thread_ts: str) -> ViewedChannel | None:
        """The channel last seen beside the thread, if any."""

    async def claim_title(self, thread: PaneThread, now: datetime) -> bool:
        """True once per thread, for whoever gives it its title (its first question)."""
