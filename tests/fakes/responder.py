"""A Responder that records what the engine said, the way a platform adapter would receive it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SentFile:
    data: bytes
    filename: str
    content_type: str
    caption: str
    private: bool = False


@dataclass
class RecordedStream:
    pieces: list[str] = field(default_factory=list)
    finished: bool = False
    abandoned: bool = False

    async def append(self, text: str) -> None:
        assert not (self.finished or self.abandoned), "append after the stream ended"
        self.pieces.append(text)

    async def finish(self) -> None:
        self.finished = True

    async def abandon(self) -> None:
        self.abandoned = True

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass
class RecordingResponder:
    texts: list[tuple[str, bool]] = field(default_factory=list)
    streams: list[RecordedStream] = field(default_factory=list)
    files: list[SentFile] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    private_statuses: list[bool] = field(default_factory=list)  # beside each status: was it asked privately
    errors: list[str] = field(default_factory=list)

    async def send_text(self, text: str, *, private: bool = False) -> None:
        self.texts.append((text, private))

    def stream(self) -> RecordedStream:
        stream = RecordedStream()
        self.streams.append(stream)
        return stream

    async def send_file(
        self, data: bytes, filename: str, content_type: str, *, caption: str = "", private: bool = False
    ) -> None:
        self.files.append(SentFile(data, filename, content_type, caption, private))

    async def show_status(self, text: str, *, private: bool = False) -> None:
        self.statuses.append(text)
        self.private_statuses.append(private)

    async def send_error(self, message: str) -> None:
        self.errors.append(message)

    @property
    def replies(self) -> list[str]:
        """Completed streamed replies, in order."""
        return [s.text for s in self.streams if s.finished]
