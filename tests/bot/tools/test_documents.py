"""PDF and .docx files attached to a message are read as text, fenced as quoted material."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity
from bot.chat.engine import Engine
from bot.messages import Attachment
from bot.tools.registry import QUOTE_OPEN
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.responder import RecordingResponder
from tests.harness.documents import make_docx, make_pdf
from tests.harness.messages import message


def attached(name: str, data: bytes, content_type: str = "application/octet-stream", size: int | None = None) -> Any:
    reads: list[str] = []

    async def read() -> bytes:
        reads.append(name)
        return data

    return Attachment(name, content_type, len(data) if size is None else size, read), reads


async def test_a_pdf_path_on_the_console_joins_its_text_to_the_message(
    engine: Engine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / "report.pdf").write_bytes(make_pdf(["Revenue grew 12 percent.", "Costs fell."]))
    fake_openai.enqueue(Reply("It grew 12%."))
    out = io.StringIO()
    stdin = io.StringIO(f"summarize {tmp_path / 'report.pdf'}\n")
    adapter = ConsoleAdapter(engine, ConsoleIdentity(user_id="ada"), stdin=stdin, stdout=out, files_dir=tmp_path)
    assert await adapter.run() == 0
    assert out.getvalue().splitlines()[0] == "It grew 12%."
    sent = fake_openai.chat_requests()[0]["messages"][-1]["content"]
    assert (
        sent.startswith("summarize\n\n" + QUOTE_OPEN) and "Revenue grew 12 percent." in sent and "Costs fell." in sent
    )


async def test_a_docx_is_read_and_a_long_pdf_stops_at_max_document_pages(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    from bot.app import open_engine

    docx, _ = attached("notes.docx", make_docx(["First point.", "Second point."]))
    pdf, _ = attached("long.pdf", make_pdf([f"page {i}" for i in range(1, 6)]), "application/pdf")
    replies = RecordingResponder()
    async with open_engine(make_settings(max_document_pages=2)) as engine:
        await engine.handle(message("read these", attachments=(docx, pdf)), replies)
    sent = fake_openai.chat_requests()[0]["messages"][-1]["content"]
    assert "First point.\nSecond point." in sent
    assert "page 1" in sent and "page 2" in sent and "page 3" not in sent
    assert "the other 3 of its 5 pages were left out (MAX_DOCUMENT_PAGES)" in sent


async def test_a_pdf_without_a_text_layer_gets_a_clear_message_and_no_model_call(
    engine: Engine, fake_openai: FakeOpenAI
) -> None:
    scan, _ = attached("scan.pdf", make_pdf(["", ""]), "application/pdf")
    replies = RecordingResponder()
    await engine.handle(message("what does it say?", attachments=(scan,)), replies)
    [error] = replies.errors
    assert "scan.pdf has no text I can read" in error and "scanned PDF" in error
    assert fake_openai.chat_requests() == []


async def test_the_declared_size_is_checked_before_the_document_is_downloaded(
    engine: Engine, fake_openai: FakeOpenAI
) -> None:
    big, reads = attached("huge.pdf", make_pdf(["x"]), "application/pdf", size=100 * 2**20)
    replies = RecordingResponder()
    await engine.handle(message("read it", attachments=(big,)), replies)
    assert reads == [] and "huge.pdf is 100.0 MB" in replies.errors[0]


async def test_a_file_that_only_claims_to_be_a_document_is_refused(engine: Engine, fake_openai: FakeOpenAI) -> None:
    fake, _ = attached("fake.docx", b"not a zip at all")
    replies = RecordingResponder()
    await engine.handle(message("read it", attachments=(fake,)), replies)
    assert replies.errors == ["fake.docx is neither a PDF nor a Word .docx file."]
