"""A message's attachments as model input: images to see, text files to read beside the message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from bot.errors import BadAttachment
from bot.media.image_limits import ImageLimits
from bot.media.vision import Detail, VisionFormula, VisionImage, image_tokens, prepare, sniff
from bot.messages import Attachment
from bot.tools.documents import UnreadableDocument, document_text, is_document
from bot.tools.registry import quoted

# Files read as text and joined to the message (anything text/* is too).
_TEXT = (
    ".txt .md .markdown .rst .csv .tsv .json .jsonl .yaml .yml .toml .ini .cfg .log .xml .html .css .sql .sh "
    ".py .js .ts .tsx .jsx .java .kt .go .rs .c .h .cc .cpp .hpp .cs .rb .php .swift .scala .lua .r .m .pl "
    ".ex .exs .erl .hs .clj .dart .vue .svelte .tf .proto .gradle .mk .dockerfile"
)
TEXT_EXTENSIONS = frozenset(_TEXT.split(" "))


@dataclass(frozen=True)
class MessageInputs:
    """What a message's files add: text joined to the message, and images for a model that sees them.

    `tokens` is the whole message's count (text and images), when the check gave one."""

    text: str
    images: tuple[VisionImage, ...] = ()
    tokens: int = 0


# Counts a message's text with its images' tokens; raises MessageTooLong when they do not fit.
SizeCheck = Callable[[str, int], int]


def is_image(attachment: Attachment) -> bool:
    """Whether a file claims to be an image (its bytes are checked when read)."""
    kind = attachment.content_type.split(";")[0].strip().lower()
    return kind.startswith("image/") or PurePath(attachment.name).suffix.lower() in (".png", ".jpg", ".jpeg",
                                                                                    ".gif", ".webp")  # fmt: skip


def is_text(attachment: Attachment) -> bool:
    """Whether a file claims to be text: text/*, or a known text or source-code extension."""
    kind = attachment.content_type.split(";")[0].strip().lower()
    name = PurePath(attachment.name)
    return kind.startswith("text/") or name.suffix.lower() in TEXT_EXTENSIONS or name.name.lower() == "dockerfile"


async def read_image(attachment: Attachment, max_bytes: int) -> bytes:
    """An attachment's bytes, refused when over the size limit or not a PNG, JPEG, GIF or WebP."""
    _check_size(attachment, max_bytes)
    data = await attachment.read()
    _check_size(attachment, max_bytes, len(data))
    if sniff(data) is None:
        raise BadAttachment(f"{attachment.name} is not an image I can read; send PNG, JPEG, GIF or WebP.")
    return data


async def read_inputs(
    text: str,
    attachments: Sequence[Attachment],
    *,
    limits: ImageLimits,
    vision: VisionFormula | None,
    model: str,
    detail: Detail,
    check: SizeCheck,
    max_document_pages: int = 50,
) -> MessageInputs:
    """Join text files to `text` and prepare images for `model`; a file of any other kind is refused.

    Nothing is spent here, and nothing is decoded before every refusal that can come first: the number of
    images, each one's pixels (from its header) and the message's tokens with the images' (`check`).
    """
    pictures = [a for a in attachments if is_image(a)]
    if pictures and vision is None:
        raise BadAttachment(
            f"The model {model} reads text only, so it cannot see {pictures[0].name}. "
            "Send the question without the image, or ask an admin for a model that sees images (/model)."
        )
    limits.check_count(len(pictures))
    for attachment in attachments:
        if not (is_image(attachment) or is_text(attachment) or is_document(attachment)):
            raise BadAttachment(
                f"{attachment.name} is neither an image nor a document. I can see PNG, JPEG, GIF and WebP "
                "images and read PDF, Word (.docx) and text files (.txt, .md, .csv, source code); for audio or "
                "video use /transcribe."
            )
    read: list[tuple[str, bytes]] = []
    tokens = 0
    parts = [text] if text else []
    for attachment in attachments:
        if is_image(attachment) and vision is not None:  # (a text-only model was refused above)
            data = await read_image(attachment, limits.max_bytes)
            tokens += image_tokens(limits.header(attachment.name, data), vision, detail)
            read.append((attachment.name, data))
            parts.append(f"[image: {attachment.name}]")  # which image is which, for "the second picture"
        elif is_document(attachment):
            parts.append(await _read_document(attachment, limits.max_bytes, max_document_pages))
        else:
            parts.append(f"--- {attachment.name} ---\n{await _read_text(attachment, limits.max_bytes)}")
    joined = "\n\n".join(parts)
    total = check(joined, tokens) + tokens
    images = [await prepare(name, data, vision, detail, limits) for name, data in read if vision is not None]
    return MessageInputs(joined, tuple(images), total)


async def _read_document(attachment: Attachment, max_bytes: int, max_pages: int) -> str:
    """A PDF's or .docx's text, fenced as quoted material (a document may carry text written to steer the model)."""
    _check_size(attachment, max_bytes)  # the declared size, before a byte is downloaded or parsed
    data = await attachment.read()
    _check_size(attachment, max_bytes, len(data))
    try:
        text = await asyncio.to_thread(document_text, attachment.name, data, max_pages)
    except UnreadableDocument as exc:
        raise BadAttachment(str(exc)) from None
    return quoted(f"the attached file {attachment.name}", text)


async def _read_text(attachment: Attachment, max_bytes: int) -> str:
    _check_size(attachment, max_bytes)
    data = await attachment.read()
    _check_size(attachment, max_bytes, len(data))
    if b"\x00" in data[:8192] or sniff(data) is not None:
        raise BadAttachment(f"{attachment.name} is not a text file (it holds binary data).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadAttachment(f"{attachment.name} is not UTF-8 text; save it as UTF-8 and send it again.") from None


def _check_size(attachment: Attachment, max_bytes: int, size: int | None = None) -> None:
    size = attachment.size if size is None else size
    if size > max_bytes:
        raise BadAttachment(
            f"{attachment.name} is {size / 2**20:.1f} MB; the limit is {max_bytes // 2**20} MB (MAX_ATTACHMENT_MB)."
        )
