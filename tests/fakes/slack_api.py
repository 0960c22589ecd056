"""A Slack Web API on 127.0.0.1 that records every call; slack-sdk's real client talks to it."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

BOT_USER = "UBOT"


@dataclass
class SlackCall:
    """One Web API call: its method and its arguments, however they were sent."""

    method: str
    args: dict[str, Any]
    at: float = field(default_factory=time.perf_counter)  # when it arrived (benchmarks time the adapters by it)


class FakeSlack(LoopbackServer):
    """Answers auth.test, chat.*, users.info and the files_upload_v2 steps; serves files for url_private."""

    def __init__(self) -> None:
        self.calls: list[SlackCall] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.files: dict[str, tuple[bytes, str]] = {}  # path -> (bytes, content type)
        self.uploads: list[bytes] = []
        self.listed_files: list[dict[str, Any]] = []  # what files.list returns, newest first
        self.refuse_streaming = False  # answer chat.startStream with an error, as workspaces without it do
        self.failures: dict[str, list[int]] = {}  # method -> HTTP statuses to answer its next calls with
        self.broken: set[str] = set()  # methods that fail with a 500 every time
        self.messages: dict[str, str] = {}  # ts -> the text the message shows now (after edits), in post order
        self.channels: dict[str, dict[str, Any]] = {}  # id -> conversations.info's channel object
        self.memberships: dict[str, list[str]] = {}  # user -> conversation ids (users.conversations)
        self.outside: set[str] = set()  # channels the bot is not in: posting there answers not_in_channel
        self.responses: list[dict[str, Any]] = []  # what was posted to slash commands' response_url
        self.file_info: dict[str, dict[str, Any]] = {}  # id -> files.info's file (absent: file_not_found)
        self.history: dict[str, list[dict[str, Any]]] = {}  # channel -> its messages and thread replies (add_history)
        self.history_page = 15  # the most a history page holds (what Slack gives non-Marketplace apps)
        self._ts = itertools.count(1)
        super().__init__(web.Application())
        self.app.router.add_post("/api/{method}", self._api)
        self.app.router.add_get("/api/{method}", self._api)
        self.app.router.add_post("/upload/{file_id}", self._upload)
        self.app.router.add_get("/files/{name}", self._file)
        self.app.router.add_post("/response/{command}", self._response)

    @property
    def base_url(self) -> str:
        """What AsyncWebClient(base_url=…) takes."""
        return f"http://127.0.0.1:{self.port}/api/"

    def add_history(self, channel: str, ts: str, user: str, text: str, *, thread_ts: str = "",
                    **extra: Any) -> None:  # fmt: skip
        """A message in a channel's history (with `thread_ts`, a reply: its parent's reply_count follows)."""
        message = {"type": "message", "ts": ts, "user": user, "text": text, **extra}
        if thread_ts:
            message["thread_ts"] = thread_ts
            parent = next(m for m in self.history[channel] if m["ts"] == thread_ts)
            parent.update(thread_ts=thread_ts, reply_count=parent.get("reply_count", 0) + 1, latest_reply=ts)
        self.history.setdefault(channel, []).append(message)

    def pane(self, what: str) -> list[Any]:
        """What the assistant pane was given, in order: `status` (assistant.threads.setStatus), `title`
        (setTitle) or `prompts` (setSuggestedPrompts: the prompts' messages)."""
        method = {"status": "assistant.threads.setStatus", "title": "assistant.threads.setTitle",
                  "prompts": "assistant.threads.setSuggestedPrompts"}[what]  # fmt: skip
        calls = self.called(method)
        if what == "prompts":
            return [[p["message"] for p in c["prompts"]] for c in calls]
        return [c[what] for c in calls]

    def called(self, method: str) -> list[dict[str, Any]]:
        """The arguments of every call to `method`, in order."""
        return [c.args for c in self.calls if c.method == method]

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        self.calls.append(SlackCall(method, args))
        failures = self.failures.get(method)
        if failures or method in self.broken:
            status = failures.pop(0) if failures else 500
            headers = {"Retry-After": "0"} if status == 429 else {}
            return web.json_response({"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"},
                                     status=status, headers=headers)  # fmt: skip
        if method.startswith(("chat.", "conversations.history")) and args.get("channel") in self.outside:
            return web.json_response({"ok": False, "error": "not_in_channel"})
        if method == "files.completeUploadExternal" and args.get("channel_id") in self.outside:
            return web.json_response({"ok": False, "error": "not_in_channel"})
        if method == "files.info" and str(args.get("file")) not in self.file_info:
            return web.json_response({"ok": False, "error": "file_not_found"})
        if method.startswith("assistant.threads.") and not (args.get("channel_id") and args.get("thread_ts")):
            return web.json_response({"ok": False, "error": "invalid_arguments"})  # the pane's thread is required
        if method.endswith("Stream") and self.refuse_streaming:
            return web.json_response({"ok": False, "error": "method_not_supported_for_channel_type"})
        return web.json_response({"ok": True, **self._answer(method, args)})

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"user_id": BOT_USER, "bot_id": "BBOT", "team_id": "T1", "team": "Acme Corp", "user": "teambot",
                    "url": "https://acme.slack.example/"}  # fmt: skip
        if method in ("chat.postMessage", "chat.update"):
            ts = str(args.get("ts") or f"900.{next(self._ts):04d}")
            self.messages[ts] = str(args.get("text"))
            return {"channel": args.get("channel"), "ts": ts}
        if method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            ts = str(args.get("ts") or f"900.{next(self._ts):04d}")
            self.messages[ts] = self.messages.get(ts, "") + _streamed_text(args)
            return {"channel": args.get("channel"), "ts": ts}
        if method == "users.conversations":
            return self._memberships(args)
        if method in ("conversations.history", "conversations.replies"):
            return self._history(method, args)
        if method == "conversations.info":
            channel = self.channels.get(str(args.get("channel")))
            return {"channel": channel} if channel else {"ok": False, "error": "channel_not_found"}
        if method == "chat.getPermalink":
            ts = str(args.get("message_ts"))
            return {"permalink": f"https://team.slack.example/archives/{args.get('channel')}/p{ts.replace('.', '')}"}
        if method == "files.list":
            return {"files": self.listed_files}
        if method == "files.info":
            return {"file": self.file_info[str(args.get("file"))]}
        if method == "chat.delete":
            self.messages.pop(str(args.get("ts")), None)
            return {"channel": args.get("channel"), "ts": args.get("ts")}
        if method == "users.info":
            user = self.users.get(str(args.get("user")), {})
            return {"user": {"id": args.get("user"), "name": args.get("user"), "profile": {}, **user}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts)}"
            return {"upload_url": self.url(f"/upload/{file_id}"), "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = args.get("files")
            return {"files": json.loads(files) if isinstance(files, str) else files}
        return {}

    def _memberships(self, args: dict[str, Any]) -> dict[str, Any]:
        """users.conversations, two per page, so paging is exercised."""
        ids = self.memberships.get(str(args.get("user")), [])
        start = int(args.get("cursor") or 0)
        page = ids[start : start + 2]
        cursor = str(start + 2) if start + 2 < len(ids) else ""
        return {"channels": [{"id": i} for i in page], "response_metadata": {"next_cursor": cursor}}

    def _history(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """A channel's timeline (parents and broadcast replies) newest first, or a thread's messages oldest
        first (its parent first), from `oldest` on, in pages of at most `history_page` behind a cursor."""
        messages = self.history.get(str(args.get("channel")), [])
        oldest = float(args.get("oldest") or 0)
        if method == "conversations.history":
            timeline = [
                m for m in messages if m.get("thread_ts", m["ts"]) == m["ts"] or m.get("subtype") == "thread_broadcast"
            ]
            found = sorted((m for m in timeline if float(m["ts"]) >= oldest), key=lambda m: -float(m["ts"]))
        else:
            thread = [m for m in messages if m.get("thread_ts") == args.get("ts")]
            found = [m for m in thread if m["ts"] == args.get("ts") or float(m["ts"]) >= oldest]
        start = int(args.get("cursor") or 0)
        size = min(int(args.get("limit") or 100), self.history_page)
        more = start + size < len(found)
        return {"messages": found[start : start + size], "has_more": more,
                "response_metadata": {"next_cursor": str(start + size) if more else ""}}  # fmt: skip

    async def _response(self, request: web.Request) -> web.Response:
        """A slash command's response_url: works in any channel, the bot a member or not."""
        self.responses.append(await request.json())
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads.append(await request.read())
        return web.Response(text="OK")

    async def _file(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer xoxb-test":
            return web.Response(status=401)
        data, content_type = self.files[request.match_info["name"]]
        return web.Response(body=data, content_type=content_type)


def _streamed_text(args: dict[str, Any]) -> str:
    """The markdown a stream call carries (slack-sdk sends `chunks` since 3.40, `markdown_text` before)."""
    chunks = args.get("chunks")
    if isinstance(chunks, str):
        chunks = json.loads(chunks)
    if chunks:
        return "".join(str(c.get("text", "")) for c in chunks if c.get("type") == "markdown_text")
    return str(args.get("markdown_text") or "")
