"""Embeddings through the official client, and the vector arithmetic of memory.

Vectors are made and stored with the standard library (`array` of float32); numpy is imported only to score them
(recall, /search), so a bot that chats and embeds without recalling or searching never loads it (~11 MB).
"""

from __future__ import annotations

import base64
import math
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

import openai

from bot.errors import GatewayBudgetSpent
from bot.providers.errors import FaultLog, translate_error

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Vector: TypeAlias = "array[float]"  # one vector: array("f"), float32


@dataclass(frozen=True)
class Embedded:
    """Unit-length vectors, one per input text, and the tokens the API billed."""

    vectors: list[Vector]
    tokens: int


class EmbeddingModel(Protocol):
    """Turns texts into vectors."""

    async def embed(self, texts: Sequence[str], *, model: str, dimensions: int | None) -> Embedded:
        """One vector per text, in order."""


class OpenAIEmbeddings:
    """`embeddings.create`, asking for base64 (float32) and decoding it here."""

    def __init__(self, client: openai.AsyncOpenAI, faults: FaultLog | None = None) -> None:
        self._client = client
        self._faults = faults or FaultLog()

    async def embed(self, texts: Sequence[str], *, model: str, dimensions: int | None) -> Embedded:
        """One unit-length vector per text, in input order."""
        try:
            # base64 asked for explicitly: left to choose, the client asks for it and decodes it with numpy
            # whenever numpy is installed, loading it into a process that only embeds.
            response = await self._client.embeddings.create(
                input=list(texts),
                model=model,
                dimensions=dimensions if dimensions else openai.omit,
                encoding_format="base64",
            )
        except openai.APIError as exc:
            error = translate_error(exc, model, "EMBEDDING_MODEL")
            if isinstance(error, GatewayBudgetSpent):  # the others turn memory off, saying so once themselves
                self._faults.report(error)
            raise error from exc
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise ValueError(f"asked for {len(texts)} embeddings, the server returned {len(rows)}")
        return Embedded(unit_vectors(_floats(row.embedding) for row in rows), response.usage.total_tokens)


def _floats(embedding: object) -> Sequence[float]:
    """One embedding as the server sent it: base64 of little-endian float32 as asked, or a list of numbers (from a
    server that ignores `encoding_format`)."""
    if isinstance(embedding, str):
        return _little_endian(array("f", base64.b64decode(embedding)))
    if isinstance(embedding, list):
        return embedding
    raise ValueError(f"the server returned an embedding of type {type(embedding).__name__}")


def unit_vectors(rows: Iterable[Sequence[float]]) -> list[Vector]:
    """Each row scaled to unit length (a zero row stays zero), so cosine similarity is a dot product."""
    vectors = []
    for row in rows:
        norm = math.hypot(*row)
        vectors.append(array("f", [x / norm for x in row] if norm > 0 else row))
    return vectors


def to_bytes(vector: Vector) -> bytes:
    """One vector as stored: little-endian float32."""
    return _little_endian(array("f", vector)).tobytes()


def _little_endian(vector: Vector) -> Vector:
    if sys.byteorder == "big":
        vector.byteswap()
    return vector


def similarities(query: Vector, stored: bytes) -> npt.NDArray[np.float32]:
    """Cosine similarity of the unit `query` to each unit vector in `stored` (back to back, the query's size).
    numpy is imported here, on the first scoring."""
    import numpy as np

    matrix = np.frombuffer(stored, dtype="<f4").reshape(-1, len(query))
    scores: npt.NDArray[np.float32] = matrix @ np.frombuffer(to_bytes(query), dtype="<f4")
    return scores
