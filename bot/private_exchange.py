"""A private command's answers reach the asker alone, whatever its handler or the platform does.

The rule lives here once: the command registry wraps the responder of every command whose spec is
`private`, and this wrapper marks every text, file and streamed reply private. Each adapter's Responder
then delivers `private=True` to the asker alone (ephemeral, a DM) or raises CannotReplyPrivately, never
posting it where others can read it. Errors are written by the bot, never carry the answer, and go out
the platform's usual way for errors; status lines ("thinking…") carry no content either.
"""

from __future__ import annotations

from bot.errors import CannotReplyPrivately, PrivateUnreachable
from bot.responder import ReplyStream, Responder

UNREACHABLE = (
    "I could not reach you privately, so the answer is not posted here. "
    "Use the slash command /{command} instead: only you see its answer."
)


class GatheredReply:
    """A streamed reply kept until it ends, then sent privately in one piece (a stream shows as it grows,
    in public on most platforms)."""

    def __init__(self, exchange: PrivateExchange) -> None:
        self._exchange = exchange
        self._text = ""

    async def append(self, text: str) -> None:
        """Keep the piece."""
        self._text += text

    async def finish(self) -> None:
        """Send the whole reply privately."""
        if self._text:
            await self._exchange.send_text(self._text)

    async def abandon(self) -> None:
        """Nothing was shown, so nothing is marked."""


class PrivateExchange:
    """The Responder a private command answers through: everything it sends is private."""

    def __init__(self, inner: Responder, command: str) -> None:
        self._inner = inner
        self._unreachable = UNREACHABLE.format(command=command)

    async def send_text(self, text: str, *, private: bool = True) -> None:
        """Send privately (the handler's `private` is ignored: the command's spec decided)."""
        try:
            await self._inner.send_text(text, private=True)
        except CannotReplyPrivately as exc:
            raise PrivateUnreachable(self._unreachable) from exc

    def stream(self) -> ReplyStream:
        """A reply gathered and sent privately when it ends."""
        return GatheredReply(self)

    async def send_file(
        self, data: bytes, filename: str, content_type: str, *, caption: str = "", private: bool = True
    ) -> None:
        """Send the file privately."""
        try:
            await self._inner.send_file(data, filename, content_type, caption=caption, private=True)
        except CannotReplyPrivately as exc:
            raise PrivateUnreachable(self._unreachable) from exc

    async def show_status(self, text: str, *, private: bool = True) -> None:
        """Progress of a private exchange is for the asker alone: others must not even see it is running."""
        await self._inner.show_status(text, private=True)

    async def send_error(self, message: str) -> None:
        """Errors go out the platform's usual way (private where it has private replies)."""
        await self._inner.send_error(message)
