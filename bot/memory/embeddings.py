"""Embeddings through the official client, and the vector arithmetic of memory (numpy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import openai

from bot.errors import GatewayBudgetSpent
from bot.providers.errors import FaultLog, translate_error

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Embedded:
    """Unit-length vectors, one row per input text, and the tokens the API billed."""

    vectors: Vectors
    tokens: int


class EmbeddingModel(Protocol):
    """Turns texts into vectors."""

    async def embed(self, texts: Sequence[str], *, model: str, dimensions: int | None) -> Embedded:
        """One vector per text, in order."""


class OpenAIEmbeddings:
    """`embeddings.create` (the client asks for base64 and decodes it)."""

    def __init__(self, client: openai.AsyncOpenAI, faults: FaultLog | None = None) -> None:
        self._client = client
        self._faults = faults or FaultLog()

    async def embed(self, texts: Sequence[str], *, model: str, dimensions: int | None) -> Embedded:
        """One unit-length vector per text, in input order."""
        try:
            response = await self._client.embeddings.create(
                input=list(texts), model=model, dimensions=dimensions if dimensions else openai.omit
            )
        except openai.APIError as exc:
            error = translate_error(exc, model, "EMBEDDING_MODEL")
            if isinstance(error, GatewayBudgetSpent):  # the others turn memory off, saying so once themselves
                self._faults.report(error)
            raise error from exc
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise ValueError(f"asked for {len(texts)} embeddings, the server returned {len(rows)}")
        return Embedded(
            normalized(np.asarray([row.embedding for row in rows], dtype=np.float32)), response.usage.total_tokens
        )


def normalized(vectors: Vectors) -> Vectors:
    """Rows scaled to unit length (a zero row stays zero), so cosine similarity is a dot product."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: Vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return out


def to_bytes(vector: Vectors) -> bytes:
    """One vector as stored: little-endian float32."""
    return vector.astype("<f4", copy=False).tobytes()


def similarities(query: Vectors, stored: bytes) -> npt.NDArray[np.float32]:
    """Cosine similarity of the unit `query` to each unit vector in `stored` (back to back, the query's size)."""
    matrix = np.frombuffer(stored, dtype="<f4").reshape(-1, query.shape[0])
    return matrix @ query
