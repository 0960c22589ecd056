"""Reading a conversation's stored history the way a restart would (a fresh store on the same database)."""

from __future__ import annotations

from bot.settings import Settings
from storage import ConversationKey, open_store
from tests.harness.messages import message


async def history(settings: Settings, key: ConversationKey) -> list[tuple[str, str]]:
    store = await open_store(settings.database_url)
    try:
        conv = await store.active_conversation(key, message("x").created_at)
        return [(m.role, m.content) for m in await store.messages(conv.id)]
    finally:
        await store.close()
