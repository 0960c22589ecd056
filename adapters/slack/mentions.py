"""The bot never pings anyone on Slack by itself: special and user mentions in what it posts are made inert.

Slack turns `<!here>`, `<!channel>`, `<!everyone>`, `<!subteam^ID|@group>` and `<@U…>` into pings wherever they
appear in a message's text, code blocks and streamed markdown included. Text the model writes (which may echo
what any member typed) passes through `neutralise` on every path out: posts, edits, streams, file captions,
ephemerals and response_url answers. The mention becomes its readable name behind a word joiner (U+2060), which
Slack shows as plain text and never links, whatever `link_names` says.
"""

from __future__ import annotations

import re

_JOINER = "\u2060"
_SPECIAL = re.compile(r"<!(here|channel|everyone|group)(?:\|[^>\n]*)?>", re.IGNORECASE)
_SUBTEAM = re.compile(r"<!subteam\^[^>|\n]*(?:\|@?([^>\n]*))?>", re.IGNORECASE)
_USER = re.compile(r"<@([UW][A-Z0-9]*)(?:\|([^>\n]*))?>", re.IGNORECASE)


def neutralise(text: str) -> str:
    """The text with every Slack ping made plain: `<!here>` → `@⁠here`, `<@U1|ann>` → `@⁠ann`."""
    if "<" not in text:
        return text
    text = _SPECIAL.sub(lambda m: f"@{_JOINER}{m.group(1).lower()}", text)
    text = _SUBTEAM.sub(lambda m: f"@{_JOINER}{m.group(1) or 'group'}", text)
    return _USER.sub(lambda m: f"@{_JOINER}{m.group(2) or m.group(1)}", text)


def settled_length(text: str) -> int:
    """How much of a growing text can be sent now: all of it, unless it ends inside a `<…` that may yet become
    a mention (streamed pieces are sent one by one and Slack reads the joined message)."""
    start = text.rfind("<")
    if start == -1 or ">" in text[start:] or "\n" in text[start:]:
        return len(text)
    return start
