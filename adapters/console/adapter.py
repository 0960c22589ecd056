"""The console adapter: a person (or a pipe) types lines; replies stream to stdout.

Piped input is handled line by line, in order; EOF ends the session. A line starting with `/` is a
slash command. Files the engine sends are written under a folder and their path is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import re
import shlex
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.chat.engine import Engine
from bot.commands import parse_command_line
from bot.directory import HistoryMessage
from bot.media.inputs import is_image, is_text
from bot.messages import Attachment, Author, Command, ConversationKey, IncomingMessage
from bot.tools.documents import is_document
from storage import StoredMessage

TEAM_ID = "local"


@dataclass(frozen=True)
class ConsoleIdentity:
    """Who is typing and where: the console's stand-in for a platform's user and channel."""

    user_id: str = "local-user"
    channel_id: str = "console"
    is_admin: bool = False


class ConsoleReplyStream:
    """Prints each piece of the reply as it arrives."""

    def __init__(self, responder: ConsoleResponder) -> None:
        self._responder = responder
        self._started = False

    async def append(self, text: str) -> None:
        """Print a piece of the reply now."""
        self._started = True
        self._responder.write(text)

    async def finish(self) -> None:
        """End the reply's line."""
        self._responder.write("\n")

    async def abandon(self) -> None:
        """Mark a partly printed reply as cut off."""
        if self._started:
            self._responder.write(" [reply interrupted]\n")


# Erase the terminal's current line (carriage return + ANSI "erase in line").
_ERASE_LINE = "\r\x1b[2K"


class ConsoleResponder:
    """Answers on stdout; files go to `files_dir`.

    On a terminal (`live`), a status ("transcribing part 2 of 3…") shows on the current line until
    the next output replaces it, as the platforms' typing indicators and status lines do; a pipe
    gets only the answers.
    """

    def __init__(self, out: TextIO, files_dir: Path, *, live: bool = False) -> None:
        self._out = out
        self._files_dir = files_dir
        self._live = live
        self._status_shown = False
        # The typed lines, once the adapter reads them: an approval question takes the next one.
        self.lines: asyncio.Queue[str | None] | None = None

    def write(self, text: str) -> None:
        """Print `text` now, first clearing a status line."""
        if self._status_shown:
            self._out.write(_ERASE_LINE)
            self._status_shown = False
        self._out.write(text)
        self._out.flush()

    async def send_text(self, text: str, *, private: bool = False) -> None:
        """Print a whole message (private or not: this terminal is the asker's alone; console users who
        share a channel share its conversation, never each other's terminals)."""
        self.write(text + "\n")

    def stream(self) -> ConsoleReplyStream:
        """Start a streamed reply."""
        return ConsoleReplyStream(self)

    async def send_file(
        self, data: bytes, filename: str, content_type: str, *, caption: str = "", private: bool = False
    ) -> None:
        """Write the file under the files folder and print where it is."""
        path = await asyncio.to_thread(_write_unique, self._files_dir, filename, data)
        await self.send_text(f"{caption}\n[file] {path}" if caption else f"[file] {path}")

    async def show_status(self, text: str, *, private: bool = False) -> None:
        """On a terminal, show the status on the current line until the next output; a pipe gets none (the
        terminal is the asker's own, so private or not it shows the same)."""
        if not self._live:
            return
        self.write(f"… {text}")
        self._status_shown = True

    async def send_error(self, message: str) -> None:
        """Print the error on stdout, where the person is reading."""
        await self.send_text(f"[error] {message}")

    async def ask_approval(self, question: str, asker_id: str, seconds: float) -> bool | None:
        """Print the question; the next line typed answers it (y or yes allows; anything else refuses).
        The terminal is the asker's own, so the line is theirs. None when no line comes within `seconds`."""
        self.write(question + " ")
        if self.lines is None:
            return False
        try:
            async with asyncio.timeout(seconds):
                line = await self.lines.get()
        except TimeoutError:
            self.write("\n(no answer: not allowed)\n")
            return None
        if line is None:  # end of input
            return False
        return line.strip().lower() in {"y", "yes"}


class ConsoleAdapter:
    """Reads lines from `stdin` and hands each to the engine, one at a time, in order."""

    def __init__(
        self,
        engine: Engine,
        identity: ConsoleIdentity,
        *,
        stdin: TextIO,
        stdout: TextIO,
        files_dir: Path = Path("console-files"),
        log_file: Path | None = None,
    ) -> None:
        self._engine = engine
        self._identity = identity
        self._stdin = stdin
        self._stdout = stdout
        self._interactive = stdin.isatty() and stdout.isatty()
        self._responder = ConsoleResponder(stdout, files_dir, live=self._interactive)
        self._log_file = log_file
        self._counter = 0
        self._directory = LocalDirectory(engine.stored_messages)
        engine.roles.serve("console", self)
        engine.channel_access["console"] = ConsoleChannels(engine, self._responder.write)

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """The dashboard's check: the console's person is an admin while the console runs with --admin."""
        return team_id == TEAM_ID and user_id == self._identity.user_id and self._identity.is_admin

    async def run(
        self, stop: asyncio.Event | None = None, grace_seconds: float = 20.0, *, abort: asyncio.Event | None = None
    ) -> int:
        """Handle lines until EOF or `stop`; returns the process exit code.

        On `stop` (the first SIGTERM/SIGINT) no new line is taken; a reply in progress may finish
        within `grace_seconds`, or until `abort` (the second), else it is cancelled: the reply is
        abandoned, nothing half-written is stored and its reservation is released.
        """
        stop = stop or asyncio.Event()
        abort = abort or asyncio.Event()
        lines = self._start_reader()
        self._responder.lines = lines
        interactive = self._interactive
        if interactive:
            where = f" The log is in {self._log_file}." if self._log_file else ""
            admin = " You are an admin here." if self._identity.is_admin else ""
            self._stdout.write(f"teambot console. Type a message, /help for commands, Ctrl-D to quit.{admin}{where}\n")
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                if interactive:
                    self._stdout.write("you> ")
                    self._stdout.flush()
                next_line = asyncio.ensure_future(lines.get())
                await asyncio.wait({next_line, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    next_line.cancel()
                    return 0
                line = next_line.result()
                if line is None:
                    return 0
                text = line.rstrip("\r\n")
                if text.strip():
                    await self._handle_until_stopped(text, stopping, grace_seconds, abort)
                    if stop.is_set():
                        return 0
        finally:
            stopping.cancel()

    async def _handle_until_stopped(
        self, text: str, stopping: asyncio.Future[Any], grace: float, abort: asyncio.Event
    ) -> None:
        missing = self._missing_file(text)
        if missing is not None:
            await self._responder.send_error(missing)
            return
        turn: asyncio.Future[Any] = asyncio.ensure_future(self._engine.handle(self.message(text), self._responder))
        await asyncio.wait({turn, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if turn.done():
            turn.result()
            return
        if self._interactive:
            self._responder.write("\n[stopping after this reply; press Ctrl-C again to stop it now]\n")
        aborting = asyncio.ensure_future(abort.wait())
        try:
            await asyncio.wait({turn, aborting}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        finally:
            aborting.cancel()
        if not turn.done():
            turn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await turn

    def _missing_file(self, text: str) -> str | None:
        """What to say when `/transcribe <path>` names no file (the console's stand-in for an upload)."""
        command = parse_command_line(text)
        if command is None or command.name != "transcribe" or not command.args or "=" in command.args[0]:
            return None
        if command.args[0].lower() == "summary":
            return None
        path = Path(command.args[0]).expanduser()
        if path.is_file():
            return None
        where = "is a folder" if path.is_dir() else "does not exist"
        return (
            f"{path} {where} (relative paths start in {Path.cwd()}). The console has no uploads: "
            f"give the path of an audio or video file, e.g. /transcribe recordings/meeting.mp3 language=en"
        )

    def _start_reader(self) -> asyncio.Queue[str | None]:
        """Lines from stdin on a daemon thread (a blocked read must not keep the process alive at exit)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def read() -> None:
            for line in iter(self._stdin.readline, ""):
                loop.call_soon_threadsafe(queue.put_nowait, line)
            loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        return queue

    def message(self, text: str) -> IncomingMessage:
        """The IncomingMessage for one typed line.

        The console has no uploads: `/transcribe path/to/file.mp3 …` attaches the file at that path;
        in a chat line, /ask or /image, each word naming an existing image or text file attaches it
        (`what is in ./photo.png?` asks about the photo).
        """
        self._counter += 1
        who = self._identity
        command = parse_command_line(text)
        attachments: tuple[Attachment, ...] = ()
        if command is not None and command.name == "transcribe" and command.args:
            path = Path(command.args[0]).expanduser()
            if path.is_file():
                attachments = (file_attachment(path),)
                rest = command.args[1:]
                command = Command(command.name, shlex.join(rest), rest)
        elif command is None or command.name in ("ask", "image"):
            text, attachments = _attach_paths(text)
            command = parse_command_line(text)
        return IncomingMessage(
            platform="console",
            team_id=TEAM_ID,
            channel_id=who.channel_id,
            author=Author(id=who.user_id, display_name=who.user_id, is_admin=who.is_admin),
            text=text,
            message_id=f"console-{self._counter}",
            is_direct=True,
            command=command,
            attachments=attachments,
            platform_directory=self._directory,
        )


BOT_NAME = "teambot"


class LocalDirectory:
    """The console is whoever owns the database file: every channel is theirs to search; no links.

    Its history is what the database keeps of a console channel's open conversation (the console has
    no platform history of its own): `stored` reads it (Engine.stored_messages).
    """

    def __init__(self, stored: Callable[[ConversationKey], Awaitable[list[StoredMessage]]]) -> None:
        self._stored = stored

    async def visible_channels(self, channel_ids: Sequence[str]) -> set[str]:
        """All of them."""
        return set(channel_ids)

    async def can_read_thread(self, channel_id: str, thread_id: str) -> bool:
        """Every thread."""
        return True

    async def link(self, channel_id: str, thread_id: str, message_id: str) -> str | None:
        """None: a console message has no address."""
        return None

    async def history(
        self, channel_id: str, thread_id: str = "", *, since: datetime | None = None
    ) -> AsyncGenerator[HistoryMessage]:
        """The stored messages of the console channel's open conversation, from `since` on; a channel's newest
        first (the Directory's rule), a thread's in order."""
        stored_messages = await self._stored(ConversationKey("console", TEAM_ID, channel_id, thread_id))
        for stored in stored_messages if thread_id else reversed(stored_messages):
            if since is not None and stored.created_at < since:
                continue
            bot = stored.role == "assistant"
            yield HistoryMessage(
                author_id=stored.author_id or (BOT_NAME if bot else ""),
                author_name=stored.author_name or (BOT_NAME if bot else stored.author_id),
                text=stored.content,
                created_at=stored.created_at,
                message_id=str(stored.id),
                thread_id=thread_id,
            )


class ConsoleChannels:
    """The console's ChannelAccess: its channels' stored messages, and a digest printed (with its channel's
    name) on the terminal, the console's one reader; `python -m bot digests run` prints to its stdout."""

    def __init__(self, engine: Engine, write: Callable[[str], object]) -> None:
        self._directory = LocalDirectory(engine.stored_messages)
        self._write = write

    def team_directory(self, team_id: str) -> LocalDirectory:
        return self._directory

    async def post_to_channel(self, team_id: str, channel_id: str, text: str) -> None:
        self._write(f"[#{channel_id}] {text}\n")


def file_attachment(path: Path) -> Attachment:
    """A local file as an Attachment; read() loads it off the event loop."""

    async def read() -> bytes:
        return await asyncio.to_thread(path.read_bytes)

    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Attachment(name=path.name, content_type=content_type, size=path.stat().st_size, read=read)


def _attach_paths(text: str) -> tuple[str, tuple[Attachment, ...]]:
    """Words of `text` that name existing image, text, PDF or .docx files, as attachments; the text without them."""
    kept: list[str] = []
    files: list[Attachment] = []
    for word in text.split(" "):
        bare = word.rstrip("?!,;:")
        path = Path(bare).expanduser() if bare and ("/" in bare or "." in bare) else None
        if path is not None and path.suffix and path.is_file():
            attachment = file_attachment(path)
            if is_image(attachment) or is_text(attachment) or is_document(attachment):
                files.append(attachment)
                continue
        kept.append(word)
    return (" ".join(kept).strip(), tuple(files)) if files else (text, ())


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _write_unique(folder: Path, filename: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    safe = _UNSAFE.sub("_", Path(filename).name).strip("._") or "file"
    stem, suffix = Path(safe).stem, Path(safe).suffix
    path, n = folder / safe, 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}{suffix}"
    path.write_bytes(data)
    return path.resolve()
