"""What the engine answers through. Each adapter implements it for its platform.

The engine never knows about message size limits, edit rates or markup: the adapter does.
"""

from __future__ import annotations

from typing import Protocol


class ReplyStream(Protocol):
    """A reply that grows as the model streams it; the adapter throttles edits to its platform's limits."""

    async def append(self, text: str) -> None:
        """Add a piece of text to the reply."""

    async def finish(self) -> None:
        """The reply is complete: flush what is buffered."""

    async def abandon(self) -> None:
        """The reply failed part-way: mark what was shown as incomplete (an error follows separately)."""


class Responder(Protocol):
    """The adapter's handle for answering one incoming message."""

    async def send_text(self, text: str, *, private: bool = False) -> None:
        """Send a complete message; `private` means only the author sees it: ephemeral or a DM, or, where
        the platform cannot, raise CannotReplyPrivately. Never post a private text where others can read it."""

    def stream(self) -> ReplyStream:
        """Start a reply that is streamed piece by piece."""

    async def send_file(
        self, data: bytes, filename: str, content_type: str, *, caption: str = "", private: bool = False
    ) -> None:
        """Upload a file (an image, a transcript) with an optional caption; `private` as for send_text."""

    async def show_status(self, text: str, *, private: bool = False) -> None:
        """Show transient progress ("thinking…", "transcribing part 2 of 5"); for a `private` exchange, where
        only the asker sees it (or not at all where the platform cannot)."""

    async def send_error(self, message: str) -> None:
        """Tell the author something went wrong, in words they can act on (private where possible)."""
