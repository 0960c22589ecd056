"""An OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

The real `openai` client talks to it over loopback, so its real code runs (SSE parsing, error
types, retries). Replies and faults are scripted through one FIFO queue; every request is recorded.
Run it by hand to try the bot without a key: `python -m tests.fakes.openai_server --port 8089`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import hashlib
import itertools
import json
import math
import re
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.loopback import LoopbackServer

# The smallest valid PNG (1x1, transparent), built once: what the fake image model "draws".
TINY_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


@dataclass(frozen=True)
class CallTool:
    """A function call in a scripted reply: streamed as the API does (id and name first, then the
    arguments in pieces of `chunk_chars`)."""

    name: str
    arguments: dict[str, Any]
    id: str = ""  # default: call_<n>
    chunk_chars: int = 7


@dataclass(frozen=True)
class Reply:
    """A scripted successful answer (with `tool_calls`: a step that calls functions, finish_reason tool_calls)."""

    text: str
    prompt_tokens: int | None = None  # None: counted like the API does
    completion_tokens: int | None = None  # None: counted
    cached_tokens: int = 0
    chunk_chars: int = 8
    delay_between_chunks: float = 0.0
    finish_reason: str = "stop"
    tool_calls: tuple[CallTool, ...] = ()
    reasoning_tokens: int = 0  # a reasoning model's thinking: counted in completion_tokens, as the API does


@dataclass(frozen=True)
class RateLimit:
    """429 rate_limit_exceeded, with Retry-After when given."""

    retry_after: float | None = None


@dataclass(frozen=True)
class ServerError:
    """A 5xx with an OpenAI-style error body."""

    status: int = 500


@dataclass(frozen=True)
class Stall:
    """Accept the request, then send nothing for this long (a read timeout for the client)."""

    seconds: float


@dataclass(frozen=True)
class ContextLengthExceeded:
    """400 context_length_exceeded."""


@dataclass(frozen=True)
class ContentPolicy:
    """400 content_policy_violation."""


@dataclass(frozen=True)
class InvalidKey:
    """401 invalid_api_key."""


@dataclass(frozen=True)
class UnknownModel:
    """404 model_not_found."""


@dataclass(frozen=True)
class Recorded:
    """An error exactly as a real server sent it: status, JSON body, headers (see the RECORDED_* constants)."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


# Error bodies recorded from real OpenAI-compatible servers (PLATFORM-FACTS.md, "OpenAI-compatible servers").
# LiteLLM proxy 1.106: an unknown model is a 400, a crossed budget a 429 with code "429" and no Retry-After.
LITELLM_UNKNOWN_MODEL = Recorded(400, {"error": {
    "message": "/chat/completions: Invalid model name passed in model=gpt-9-nano. Call `/v1/models` to view "
               "available models for your key.",
    "type": "invalid_request_error", "param": "model", "code": "400"}})  # fmt: skip
LITELLM_UNKNOWN_EMBEDDING_MODEL = Recorded(400, {"error": {
    "message": "/embeddings: Invalid model name passed in model=text-embedding-3-small. Call `/v1/models` to "
               "view available models for your key.",
    "type": "invalid_request_error", "param": "model", "code": "400"}})  # fmt: skip
LITELLM_BUDGET_EXCEEDED = Recorded(429, {"error": {
    "message": "Budget has been exceeded! Current cost: 0.0104, Max budget: 0.01",
    "type": "budget_exceeded", "param": None, "code": "429"}})  # fmt: skip
LITELLM_DIMENSIONS_UNSUPPORTED = Recorded(400, {"error": {
    "message": "litellm.UnsupportedParamsError: Setting dimensions is not supported for OpenAI `text-embedding-3`"
               " and later models. To drop it from the call, set `litellm.drop_params = True`.. Received Model "
               "Group=all-minilm-l6-v2\nAvailable Model Group Fallbacks=None",
    "type": "None", "param": None, "code": "400"}})  # fmt: skip
LITELLM_BAD_KEY = Recorded(401, {"error": {
    "message": "Authentication Error, Invalid proxy server token passed. Unable to find token in cache or "
               "`LiteLLM_VerificationTokenTable`",
    "type": "auth_error", "param": "None", "code": "401"}})  # fmt: skip
# Ollama's OpenAI-compatible API (/v1): 404, its own wording.
OLLAMA_UNKNOWN_MODEL = Recorded(404, {"error": {
    "message": 'model "llama9:8b" not found, try pulling it first', "type": "not_found_error", "param": None,
    "code": None}})  # fmt: skip
# vLLM: a top-level error object (no "error" wrapper), numeric code.
VLLM_UNKNOWN_MODEL = Recorded(404, {
    "object": "error", "message": "The model `gpt-9-nano` does not exist.", "type": "NotFoundError",
    "param": None, "code": 404})  # fmt: skip
VLLM_DIMENSIONS_UNSUPPORTED = Recorded(400, {
    "object": "error", "message": 'Model "intfloat/e5-small" does not support matryoshka representation, changing '
                                  "output dimensions will lead to poor results.",
    "type": "BadRequestError", "param": None, "code": 400})  # fmt: skip
VLLM_CONTEXT_TOO_LONG = Recorded(400, {
    "object": "error", "message": "This model's maximum context length is 4096 tokens. However, you requested "
                                  "5120 tokens (4096 in the messages, 1024 in the completion). Please reduce the "
                                  "length of the messages or completion.",
    "type": "BadRequestError", "param": None, "code": 400})  # fmt: skip


@dataclass(frozen=True)
class DropMidStream:
    """Start a 200 SSE stream, send some content chunks, then cut the connection."""

    text: str = "partial answer"
    after_chunks: int = 1


@dataclass(frozen=True)
class ImageReply:
    """A scripted /v1/images/generations answer: `count` PNGs (default: as many as asked)."""

    count: int | None = None
    revised_prompt: str | None = None


@dataclass(frozen=True)
class TranscriptionReply:
    """A scripted /v1/audio/transcriptions answer."""

    text: str


@dataclass(frozen=True)
class SpeechReply:
    """A scripted /v1/audio/speech answer: a silent MP3 of `seconds` (default: 15 characters a second)."""

    seconds: float | None = None


@dataclass(frozen=True)
class InvalidImage:
    """400 as the API answers an image it cannot read (chat content parts or an edit's image)."""


@dataclass(frozen=True)
class NoVision:
    """400 as the API answers image content parts sent to a text-only model."""


@dataclass(frozen=True)
class SpeechInputTooLong:
    """400 as the API answers speech input over its 4,096-character limit."""


@dataclass(frozen=True)
class EmbeddingReply:
    """A scripted /v1/embeddings answer: the usual vectors, after `delay` seconds."""

    delay: float = 0.0


Scripted = (
    Reply
    | RateLimit
    | ServerError
    | Stall
    | ContextLengthExceeded
    | ContentPolicy
    | InvalidKey
    | UnknownModel
    | DropMidStream
    | InvalidImage
    | NoVision
    | SpeechInputTooLong
    | Recorded
)


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None


@functools.cache
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def count_tokens(text: str) -> int:
    """o200k_base tokens of `text`, by bpe-openai's own encoder: an independent reference for the bot's counts
    (tiktoken's encoder; tests/bot/providers/test_tokens.py holds the two to the same ids)."""
    return len(_encoding().encode_ordinary(text))


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt size as the API counts it: 3 per message plus content, plus 3 to prime the reply."""
    total = 3
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, list):
            parts = [part for part in content if isinstance(part, dict)]
            total += sum(IMAGE_PART_TOKENS for part in parts if part.get("type") == "image_url")
            content = "".join(part.get("text", "") for part in parts)
        total += 3 + count_tokens(str(content))
    return total


# What the fake reports for each image content part (the real API's count depends on the model and size).
IMAGE_PART_TOKENS = 85


def image_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every image_url content part of a chat request, in order."""
    parts: list[dict[str, Any]] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            parts.extend(p for p in content if isinstance(p, dict) and p.get("type") == "image_url")
    return parts


def _readable_image(part: dict[str, Any]) -> bool:
    """Whether an image_url part carries a data URL of a PNG, JPEG, GIF or WebP (the fake fetches no URL)."""
    url = str((part.get("image_url") or {}).get("url") or "")
    head, _, data = url.partition(",")
    if not head.startswith("data:image/") or not head.endswith(";base64"):
        return False
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        return False
    return raw.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")) or raw[8:12] == b"WEBP"


def silent_mp3(seconds: float) -> bytes:
    """A real MP3 of `seconds` of silence, made with the bundled ffmpeg (what the fake "says")."""
    import subprocess

    from bot.media.audio import ffmpeg_exe

    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         f"anullsrc=r=16000:cl=mono:d={seconds:.3f}", "-c:a", "libmp3lame", "-b:a", "24k", "-f", "mp3", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip


def word_vector(text: str, dims: int) -> list[float]:
    """A deterministic embedding: each word adds ±1 at positions picked by its hash, so texts sharing
    words are near (cosine similarity grows with the words they share) and unrelated texts are not."""
    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=16).digest()
        for i in range(0, 16, 4):
            position = int.from_bytes(digest[i : i + 3], "little") % dims
            vector[position] += 1.0 if digest[i + 3] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _echo(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    if not users:
        return "echo"
    content = users[-1]["content"]
    if isinstance(content, list):  # content parts: echo the text, count the images
        text = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        images = sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
        return f"echo: {text} [{images} image(s)]"
    return f"echo: {content}"


def _error(status: int, message: str, type_: str, code: str | None, param: str | None = None,
           headers: dict[str, str] | None = None) -> web.Response:  # fmt: skip
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


class FakeOpenAI(LoopbackServer):
    """The server. Use as `async with FakeOpenAI() as fake:`; point the client at `fake.base_url`."""

    def __init__(
        self,
        *,
        default_reply: Callable[[dict[str, Any]], str] | None = None,
        embedding_dims: int = 1536,
        refuse_dimensions: Recorded | None = None,
        ignore_dimensions: bool = False,
        ignore_encoding_format: bool = False,
        image_links: bool = False,
    ) -> None:
        """`embedding_dims`: the model's own vector size. `refuse_dimensions`: answer any embedding request
        that sets `dimensions` with this error (servers without Matryoshka models). `ignore_dimensions`: answer
        it with the model's own size (servers that drop the parameter: LiteLLM's drop_params).
        `ignore_encoding_format`: answer embeddings as lists of numbers even when base64 is asked for (servers that
        know only the default). `image_links`: answer
        image requests with `url`s to `/files/…` on this server, as LiteLLM's mocks do, never `b64_json`."""
        self.embedding_dims = embedding_dims
        self.refuse_dimensions = refuse_dimensions
        self.ignore_dimensions = ignore_dimensions
        self.ignore_encoding_format = ignore_encoding_format
        self.image_links = image_links
        self.link_to: str | None = None  # with image_links: every link points here instead (where links may lead)
        self.refused_words: set[str] = set()  # an embedding input containing one is refused (content policy)
        self.files: dict[str, tuple[bytes, str]] = {}  # what /files/{name} serves: (bytes, content type)
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Scripted] = deque()
        self._image_queue: deque[ImageReply | Scripted] = deque()
        self._audio_queue: deque[TranscriptionReply | Scripted] = deque()
        self._embedding_queue: deque[EmbeddingReply | Scripted] = deque()
        self._speech_queue: deque[SpeechReply | Scripted] = deque()
        self.edit_uploads: list[dict[str, Any]] = []  # the form fields and image bytes of every edit request
        self.audio_files: list[tuple[str, bytes]] = []  # (filename, bytes) of every transcription upload
        self._default_reply = default_reply or _echo
        self._ids = itertools.count(1)
        super().__init__(web.Application(client_max_size=64 * 1024 * 1024))  # audio uploads past the API's 25 MB
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_post("/v1/images/generations", self._images)
        self.app.router.add_post("/v1/images/edits", self._image_edits)
        self.app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        self.app.router.add_post("/v1/audio/speech", self._speech)
        self.app.router.add_post("/v1/embeddings", self._embeddings)
        self.app.router.add_get("/files/{name}", self._file)

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL should be."""
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *items: Scripted) -> None:
        """Script the next answers, in order; when the queue is empty the server echoes."""
        self._queue.extend(items)

    def enqueue_images(self, *items: ImageReply | Scripted) -> None:
        """Script image answers; when empty, every request gets the PNGs it asked for."""
        self._image_queue.extend(items)

    def enqueue_speech(self, *items: SpeechReply | Scripted) -> None:
        """Script speech answers; when empty, an MP3 of silence, 15 characters of input a second."""
        self._speech_queue.extend(items)

    def enqueue_transcriptions(self, *items: TranscriptionReply | Scripted) -> None:
        """Script transcription answers; when empty, the text is "[<filename>: <bytes> bytes]"."""
        self._audio_queue.extend(items)

    def enqueue_embeddings(self, *items: EmbeddingReply | Scripted) -> None:
        """Script embedding answers; when empty, every text gets its bag-of-words vector (see `word_vector`)."""
        self._embedding_queue.extend(items)

    def embedded_texts(self) -> list[str]:
        """Every text sent to /v1/embeddings, in order."""
        return [text for r in self.requests_to("/v1/embeddings") for text in (r.json or {}).get("input", [])]

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests to one path, e.g. /v1/images/generations."""
        return [r for r in self.requests if r.path == path]

    def chat_requests(self) -> list[dict[str, Any]]:
        """JSON bodies of the chat completion requests, in order."""
        return [r.json for r in self.requests if r.path == "/v1/chat/completions" and r.json is not None]

    async def _record(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.headers), body))
        return body if isinstance(body, dict) else {}

    async def _images(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        item = self._image_queue.popleft() if self._image_queue else ImageReply()
        fault = await self._fault(item)  # type: ignore[arg-type]
        if fault is not None:
            return fault
        assert isinstance(item, ImageReply)
        count = item.count if item.count is not None else int(body.get("n") or 1)
        if self.image_links:
            data = []
            for _ in range(count):
                name = f"image-{next(self._ids)}.png"
                self.files.setdefault(name, (TINY_PNG, "image/png"))
                link = self.link_to or self.url(f"/files/{name}")
                data.append({"url": link, "revised_prompt": item.revised_prompt})
            return web.json_response({"created": int(time.time()), "data": data})
        png = base64.b64encode(TINY_PNG).decode()
        data = [{"b64_json": png, "revised_prompt": item.revised_prompt} for _ in range(count)]
        return web.json_response({"created": int(time.time()), "data": data})

    async def _image_edits(self, request: web.Request) -> web.StreamResponse:
        fields = await _form(request)
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.headers),
                                             {k: v for k, v in fields.items() if isinstance(v, str)}))  # fmt: skip
        self.edit_uploads.append(fields)
        item = self._image_queue.popleft() if self._image_queue else ImageReply()
        fault = await self._fault(item)  # type: ignore[arg-type]
        if fault is not None:
            return fault
        assert isinstance(item, ImageReply)
        upload = fields.get("image") or fields.get("image[]")
        if not isinstance(upload, tuple) or not upload[1].startswith((b"\x89PNG", b"\xff\xd8\xff", b"RIFF")):
            return await self._fault(InvalidImage())  # type: ignore[return-value]
        if fields.get("model") not in ("gpt-image-1", "dall-e-2", None):
            return _error(400, f"Invalid value: '{fields.get('model')}'. Value must be 'dall-e-2' or 'gpt-image-1'.",
                          "invalid_request_error", "invalid_value", "model")  # fmt: skip
        count = item.count if item.count is not None else int(str(fields.get("n") or 1))
        png = base64.b64encode(TINY_PNG).decode()
        data = [{"b64_json": png, "revised_prompt": item.revised_prompt} for _ in range(count)]
        return web.json_response({"created": int(time.time()), "data": data})

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        item = self._speech_queue.popleft() if self._speech_queue else SpeechReply()
        fault = await self._fault(item)  # type: ignore[arg-type]
        if fault is not None:
            return fault
        assert isinstance(item, SpeechReply)
        text = str(body.get("input") or "")
        if len(text) > 4096:
            return await self._fault(SpeechInputTooLong())  # type: ignore[return-value]
        seconds = item.seconds if item.seconds is not None else max(0.2, len(text) / 15)
        audio = await asyncio.to_thread(silent_mp3, seconds)
        return web.Response(body=audio, content_type="audio/mpeg")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.headers), None))
        found = self.files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=found[0], content_type=found[1])

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        fields: dict[str, Any] = {}
        upload: tuple[str, bytes] = ("", b"")
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.filename:
                upload = (part.filename, bytes(await part.read()))
            elif part.name:
                fields[part.name] = await part.text()
        fields["file_name"], fields["file_size"] = upload[0], len(upload[1])
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.headers), fields))
        self.audio_files.append(upload)
        item = self._audio_queue.popleft() if self._audio_queue else TranscriptionReply(
            f"[{upload[0]}: {len(upload[1])} bytes]"
        )  # fmt: skip
        fault = await self._fault(item)  # type: ignore[arg-type]
        if fault is not None:
            return fault
        assert isinstance(item, TranscriptionReply)
        if fields.get("response_format") == "text":
            return web.Response(text=item.text + "\n", content_type="text/plain")
        return web.json_response({"text": item.text})

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        item = self._embedding_queue.popleft() if self._embedding_queue else EmbeddingReply()
        fault = await self._fault(item)  # type: ignore[arg-type]
        if fault is not None:
            return fault
        assert isinstance(item, EmbeddingReply)
        await asyncio.sleep(item.delay)
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            return _error(400, "'input' must be a non-empty string or array of them", "invalid_request_error", None)
        if body.get("dimensions") is not None and self.refuse_dimensions is not None:
            return _recorded(self.refuse_dimensions)
        if any(word in text.lower() for text in texts for word in self.refused_words):
            return _error(400, "Your request was rejected by the safety system.", "invalid_request_error",
                          "content_policy_violation")  # fmt: skip
        dims = int(body.get("dimensions") or self.embedding_dims) if not self.ignore_dimensions else self.embedding_dims
        data = []
        for index, text in enumerate(texts):
            vector = word_vector(text, dims)
            if body.get("encoding_format") == "base64" and not self.ignore_encoding_format:
                encoded: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(count_tokens(t) for t in texts)
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})  # fmt: skip

    async def _fault(self, item: Scripted) -> web.StreamResponse | None:
        """The response for a fault, or None when `item` is not one the generic path handles."""
        if isinstance(item, RateLimit):
            headers = {}
            if item.retry_after is not None:
                whole = float(item.retry_after).is_integer()
                headers["Retry-After"] = str(int(item.retry_after)) if whole else str(item.retry_after)
            return _error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded", headers=headers)
        if isinstance(item, ServerError):
            return _error(item.status, "The server had an error while processing your request.", "server_error", None)
        if isinstance(item, ContextLengthExceeded):
            return _error(400, "This model's maximum context length is exceeded.", "invalid_request_error",
                          "context_length_exceeded", "messages")  # fmt: skip
        if isinstance(item, ContentPolicy):
            return _error(400, "Your request was rejected by the safety system.", "invalid_request_error",
                          "content_policy_violation")  # fmt: skip
        if isinstance(item, InvalidKey):
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if isinstance(item, UnknownModel):
            return _error(404, "The model does not exist or you do not have access to it.", "invalid_request_error",
                          "model_not_found")  # fmt: skip
        if isinstance(item, InvalidImage):
            return _error(400, "You uploaded an unsupported image. Please make sure your image is valid.",
                          "invalid_request_error", "invalid_image_format")  # fmt: skip
        if isinstance(item, NoVision):
            return _error(400, "Invalid content type. image_url is only supported by certain models.",
                          "invalid_request_error", None, "messages.[0].content.[1].type")  # fmt: skip
        if isinstance(item, SpeechInputTooLong):
            detail = "'msg': 'String should have at most 4096 characters', 'ctx': {'max_length': 4096}"
            return _error(400, f"[{{'type': 'string_too_long', 'loc': ('body', 'input'), {detail}}}]",
                          "invalid_request_error", None)  # fmt: skip
        if isinstance(item, Recorded):
            return _recorded(item)
        if isinstance(item, Stall):
            await asyncio.sleep(item.seconds)
            return _error(504, "stalled", "server_error", None)
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        item: Scripted = self._queue.popleft() if self._queue else Reply(self._default_reply(body))
        fault = await self._fault(item)
        if fault is not None:
            return fault
        if not all(_readable_image(part) for part in image_parts(body)):
            return await self._fault(InvalidImage())  # type: ignore[return-value]
        model = str(body.get("model", "fake-model"))
        ident = f"chatcmpl-fake-{next(self._ids)}"
        if isinstance(item, DropMidStream):
            return await self._drop(request, item, ident, model)
        assert isinstance(item, Reply)
        calls = [(c.id or f"call_{next(self._ids)}", c.name, json.dumps(c.arguments)) for c in item.tool_calls]
        finish_reason = "tool_calls" if calls and item.finish_reason == "stop" else item.finish_reason
        prompt = item.prompt_tokens if item.prompt_tokens is not None else prompt_tokens(body["messages"])
        completion = item.completion_tokens
        if completion is None:
            completion = count_tokens(item.text) + sum(count_tokens(name + args) for _, name, args in calls)
            completion += item.reasoning_tokens
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": item.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": item.reasoning_tokens},
        }
        if not body.get("stream"):
            return web.json_response({
                "id": ident, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": item.text or None, **({
                    "tool_calls": [{"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                                   for i, n, a in calls]} if calls else {})},
                             "finish_reason": finish_reason}],
                "usage": usage,
            })  # fmt: skip
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = await self._open_stream(request)
        chunk = functools.partial(_chunk, ident, model, include_usage)
        await _send(response, chunk({"role": "assistant", "content": ""}))
        for start in range(0, len(item.text), max(1, item.chunk_chars)):
            if item.delay_between_chunks:
                await asyncio.sleep(item.delay_between_chunks)
            await _send(response, chunk({"content": item.text[start : start + item.chunk_chars]}))
        for index, ((call_id, name, args), call) in enumerate(zip(calls, item.tool_calls, strict=True)):
            # As the API streams a call: index, id, type and name (empty arguments) first, then argument pieces.
            head = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            await _send(response, chunk({"tool_calls": [head]}))
            for start in range(0, len(args), max(1, call.chunk_chars)):
                piece = {"index": index, "function": {"arguments": args[start : start + call.chunk_chars]}}
                await _send(response, chunk({"tool_calls": [piece]}))
        await _send(response, chunk({}, finish_reason))
        if include_usage:
            await _send(response, {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()),
                                   "model": model, "choices": [], "usage": usage})  # fmt: skip
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _drop(self, request: web.Request, item: DropMidStream, ident: str, model: str) -> web.StreamResponse:
        response = await self._open_stream(request)
        chunk = functools.partial(_chunk, ident, model, False)
        await _send(response, chunk({"role": "assistant", "content": ""}))
        size = max(1, len(item.text) // max(1, item.after_chunks))
        for start in range(0, len(item.text), size):
            await _send(response, chunk({"content": item.text[start : start + size]}))
        await asyncio.sleep(0.05)  # let the client read what was sent
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # aiohttp drops the connection: no terminating chunk, no [DONE]

    @staticmethod
    async def _open_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        return response


async def _form(request: web.Request) -> dict[str, Any]:
    """A multipart form: text fields as str, files as (filename, bytes)."""
    fields: dict[str, Any] = {}
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        if part.filename:
            fields[part.name] = (part.filename, bytes(await part.read()))
        else:
            fields[part.name] = await part.text()
    return fields


def _recorded(item: Recorded) -> web.Response:
    return web.json_response(item.body, status=item.status, headers=dict(item.headers))


class RefusingPort:
    """A loopback port where nothing listens: every connection is refused (a server down or restarting).

    Start a FakeOpenAI on `port` to bring the server back.
    """

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL should be."""
        return f"http://127.0.0.1:{self.port}/v1"


class FullBacklog:
    """A listener whose accept queue is full and never drained (a server swamped by a burst).

    A new connection is neither accepted nor refused: the client's connect times out, before any byte of
    the request is sent. Use as a context manager; `base_url` points at it.
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._fillers: list[socket.socket] = []
        for _ in range(4):  # a backlog of 0 still queues one or two: fill it
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL should be."""
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        """Stop listening; the port is free for a real server."""
        for filler in self._fillers:
            filler.close()
        self._listener.close()

    def __enter__(self) -> FullBacklog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chunk(ident: str, model: str, include_usage: bool, delta: dict[str, Any],
           finish_reason: str | None = None) -> dict[str, Any]:  # fmt: skip
    chunk: dict[str, Any] = {
        "id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }  # fmt: skip
    if include_usage:
        chunk["usage"] = None
    return chunk


async def _send(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(payload)}\n\n".encode())


async def _serve(port: int) -> None:
    async with FakeOpenAI() as fake:
        await fake.stop()
        await fake.start(port)
        print(f"fake OpenAI server at {fake.base_url} (echoes; Ctrl-C to stop)", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.openai_server")
    parser.add_argument("--port", type=int, default=8089)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args().port))
