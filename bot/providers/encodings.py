"""The OpenAI encodings we count with, as data: where each vocabulary lives, its split pattern, and which model
uses which.

The vocabularies are the `.tiktoken.gz` files the bpe-openai package ships (tiktoken downloads them at run time,
which fails on air-gapped hosts). They are found without importing bpe-openai: its import alone loads every
vocabulary it has into Python dictionaries (~60 MB). Patterns are tiktoken's (`tiktoken_ext/openai_public.py`),
the same as bpe-openai's; tests/bot/providers/test_tokens.py checks both and the token ids. Special tokens are
not here: user text is counted as ordinary text, so a pasted "<|endoftext|>" is the characters it is.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

VOCABULARY_PACKAGE = "bpe_openai"


@dataclass(frozen=True)
class EncodingSpec:
    """One encoding: its name (which names its vocabulary file) and the pattern that splits text before merging."""

    name: str
    pattern: str

    def ranks(self) -> dict[bytes, int]:
        """The encoding's mergeable tokens and their ranks, read from bpe-openai's copy of the vocabulary."""
        ranks: dict[bytes, int] = {}
        with gzip.open(_vocabulary_file(self.name), "rb") as lines:
            for line in lines:
                if line.strip():
                    token, rank = line.split()
                    ranks[base64.b64decode(token)] = int(rank)
        return ranks


def _vocabulary_file(name: str) -> Path:
    # find_spec of a top-level package locates it without running its __init__.
    spec = importlib.util.find_spec(VOCABULARY_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the {VOCABULARY_PACKAGE} package (the token vocabularies) is not installed")
    return Path(spec.origin).parent / "data" / f"{name}.tiktoken.gz"


_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_VOYAGE3_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)

ENCODINGS: dict[str, EncodingSpec] = {
    spec.name: spec
    for spec in (
        EncodingSpec("cl100k_base", _CL100K_PATTERN),
        EncodingSpec("o200k_base", _O200K_PATTERN),
        EncodingSpec("voyage3_base", _VOYAGE3_PATTERN),
    )
}

# Model (lower case) → encoding, as bpe-openai's table has it (so a model counts as it did with bpe-openai's own
# encoder; a test compares the two). The legacy encodings (gpt2, r50k, p50k) have no vocabulary here: a model
# that uses one is refused at start, as before.
MODEL_ENCODINGS: dict[str, str] = {
    **{name: name for name in ("cl100k_base", "o200k_base", "voyage3_base")},
    **dict.fromkeys(("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4o-128k", "gpt-4.1-128k"), "o200k_base"),
    "voyage-3": "voyage3_base",
    **dict.fromkeys(
        (
            "gpt-3.5",
            "gpt-3.5-turbo",
            "gpt-3.5-turbo-0301",
            "gpt-3.5-turbo-0401",
            "gpt-3.5-turbo-0125",
            "gpt-35-turbo",
            "gpt-4",
            "gpt-4-0314",
            "gpt-4-0613",
            "gpt-4-32k",
            "text-embedding-ada-002",
            "text-embedding-3-small",
            "text-embedding-3-large",
        ),
        "cl100k_base",
    ),
    **dict.fromkeys(("gpt2", "gpt-2"), "gpt2"),
    **{name: name for name in ("r50k_base", "p50k_base", "p50k_edit")},
    **dict.fromkeys(
        (
            "text-davinci-003",
            "text-davinci-002",
            "code-davinci-002",
            "code-davinci-001",
            "code-cushman-002",
            "code-cushman-001",
            "davinci-codex",
            "cushman-codex",
        ),
        "p50k_base",
    ),
    **dict.fromkeys(("text-davinci-edit-001", "code-davinci-edit-001"), "p50k_edit"),
    **dict.fromkeys(
        (
            "text-davinci-001",
            "text-curie-001",
            "text-babbage-001",
            "text-ada-001",
            "davinci",
            "curie",
            "babbage",
            "ada",
            "text-similarity-davinci-001",
            "text-similarity-curie-001",
            "text-similarity-babbage-001",
            "text-similarity-ada-001",
            "text-search-davinci-doc-001",
            "text-search-curie-doc-001",
            "text-search-babbage-doc-001",
            "text-search-ada-doc-001",
            "code-search-babbage-code-001",
            "code-search-ada-code-001",
        ),
        "r50k_base",
    ),
}
