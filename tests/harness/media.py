"""Media test helpers: the ledger's rows, attachments made of bytes, running one message through the engine."""

from __future__ import annotations

from bot.chat.engine import Engine
from bot.messages import Attachment, IncomingMessage
from bot.settings import Settings
from storage import open_store
from tests.fakes.responder import RecordingResponder


async def ledger(settings: Settings) -> list[tuple[str, str, int, str]]:
    store = await open_store(settings.database_url)
    try:
        return await store.ledger.ledger_rows("local")
    finally:
        await store.close()


def bytes_attachment(name: str, data: bytes, content_type: str = "audio/mpeg") -> Attachment:
    async def read() -> bytes:
        return data

    return Attachment(name=name, content_type=content_type, size=len(data), read=read)


async def run(engine: Engine, msg: IncomingMessage) -> RecordingResponder:
    responder = RecordingResponder()
    await engine.handle(msg, responder)
    return responder
