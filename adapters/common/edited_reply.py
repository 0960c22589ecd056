"""A streamed reply shown by editing a message: at most one edit per interval, continued in new
messages past the platform's size limit, code blocks kept whole across the split."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.common.text_split import split_chunks

Post = Callable[[str], Awaitable[Any]]  # sends a new message, returns a handle for editing it
Edit = Callable[[Any, str], Awaitable[None]]  # replaces the text of the message behind a handle


class EditedReply:
    """The engine's ReplyStream for platforms that stream by editing (Slack's fallback, Discord)."""

    def __init__(
        self,
        post: Post,
        edit: Edit,
        *,
        limit: int,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        interrupted: str = " [reply interrupted]",
        handle: Any = None,
        reopen: str = "",
    ) -> None:
        self._post = post
        self._edit = edit
        self._limit = limit
        self._interval = interval
        self._clock = clock
        self._interrupted = interrupted
        self._handle = handle  # the message being edited (perhaps a "thinking…" placeholder)
        self._text = ""
        self._shown = ""
        self._done = 0  # characters of text finalized in earlier messages
        self._reopen = reopen  # the code fence the current message reopens
        self._last = float("-inf")
        self.edits = 0

    async def append(self, text: str) -> None:
        """Add text; show it when the edit interval allows."""
        self._text += text
        if self._clock() - self._last >= self._interval:
            await self._push()

    async def finish(self) -> None:
        """Show everything, keeping to the edit rate: the last edit waits out the interval if it must."""
        wait = self._interval - (self._clock() - self._last)
        if wait > 0 and self._handle is not None and self._text[self._done :] != self._shown:
            await asyncio.sleep(wait)
        await self._push()

    async def abandon(self) -> None:
        """Mark a shown reply as cut off."""
        if self._handle is not None:
            self._text += self._interrupted if self._text else self._interrupted.strip()
            await self._push()

    async def _push(self) -> None:
        pending = self._text[self._done :]
        if not pending:
            return
        chunks = split_chunks(pending, self._limit, self._reopen)
        # Every chunk but the last is complete: it goes out for good, and the next one starts a
        # new message, reopening a code block the split cut through. The last stays editable.
        for chunk, following in itertools.pairwise(chunks):
            await self._show(chunk.text)
            self._done += len(chunk.piece)
            self._reopen = following.reopen
            self._handle, self._shown = None, ""
        await self._show(chunks[-1].text)
        self._last = self._clock()

    async def _show(self, text: str) -> None:
        if text == self._shown:
            return
        if self._handle is None:
            self._handle = await self._post(text)
        else:
            await self._edit(self._handle, text)
            self.edits += 1
        self._shown = text
