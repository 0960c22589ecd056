"""Markdown (what the model writes) to Slack mrkdwn (what Slack renders), outside code."""

from __future__ import annotations

import re

from adapters.slack.mentions import neutralise

_CODE = re.compile(r"(```.*?```|`[^`\n]+`)", re.DOTALL)
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![*\w])")
_STRIKE = re.compile(r"~~(.+?)~~")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE)


def to_mrkdwn(text: str) -> str:
    """Bold, italics, strike-through, links and headings converted; code blocks and spans untouched
    but for mentions, which are made inert everywhere."""
    parts = _CODE.split(neutralise(text))
    return "".join(part if i % 2 else _convert(part) for i, part in enumerate(parts))


def _convert(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    return _HEADING.sub(lambda m: f"*{m.group(1)}*", text)
