"""Approval questions waiting for a click: only the asker's click answers one (Slack buttons; Discord next)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

ALLOW = "allow"
DENY = "deny"


def outcome(answer: bool | None, seconds: float) -> str:
    """How a question was answered, added to it once it is (its buttons gone)."""
    if answer is None:
        return f"no answer in {seconds:g} s: not allowed"
    return "allowed" if answer else "not allowed"


class PendingApprovals:
    """The questions of one adapter that wait for their asker's click, by a random key the buttons carry."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[str, asyncio.Future[bool]]] = {}

    async def wait(self, asker_id: str, seconds: float, post: Callable[[str], Awaitable[None]]) -> bool | None:
        """Post the question (its buttons carry the key), then wait for the asker's click; None when none came."""
        key = secrets.token_urlsafe(12)
        answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[key] = (asker_id, answered)
        try:
            await post(key)
            async with asyncio.timeout(seconds):
                return await answered
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(key, None)

    def answer(self, key: str, user_id: str, choice: str) -> bool:
        """A click on a question's button; False when it is not the asker's (or the question is gone)."""
        waiting = self._waiting.get(key)
        if waiting is None or waiting[0] != user_id or waiting[1].done():
            return False
        waiting[1].set_result(choice == ALLOW)
        return True
