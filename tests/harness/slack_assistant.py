"""Slack's assistant pane events, shaped as Slack's docs show them, for the signed-request harness."""

from __future__ import annotations

from typing import Any

PANE = "D1"  # the person's DM with the bot, where every pane thread lives
THREAD = "1700000000.000100"


def thread_started(viewing: str | None, *, user: str = "U1", thread_ts: str = THREAD) -> dict[str, Any]:
    """`assistant_thread_started`: the person opened the pane (beside channel `viewing`, or none)."""
    context = {"channel_id": viewing, "team_id": "T1", "enterprise_id": "E1"} if viewing else {}
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {"user_id": user, "context": context, "channel_id": PANE, "thread_ts": thread_ts},
        "event_ts": "1700000000.000200",
    }


def context_changed(viewing: str, *, user: str = "U1", thread_ts: str = THREAD) -> dict[str, Any]:
    """`assistant_thread_context_changed`: the person opened another channel beside the pane."""
    event = thread_started(viewing, user=user, thread_ts=thread_ts)
    return {**event, "type": "assistant_thread_context_changed"}


def pane_message(text: str, ts: str, *, user: str = "U1", thread_ts: str = THREAD, **extra: Any) -> dict[str, Any]:
    """A person's message in a pane thread: a `message` in their DM, with the thread's ts."""
    return {"type": "message", "channel_type": "im", "channel": PANE, "user": user, "text": text, "ts": ts,
            "thread_ts": thread_ts, "event_ts": ts, **extra}  # fmt: skip
