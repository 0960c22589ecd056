"""Byte-pair encoding with the vocabulary held once: the OpenAI encodings' tokens, for counting and clipping.

tiktoken's Rust core keeps a vocabulary three times (token → rank, rank → token, the sorted tokens: ~48 MB for
o200k_base); counting and clipping need only token → rank, kept here as one dictionary (~25 MB). The algorithm is
tiktoken's (`byte_pair_merge`): split the text with the encoding's pattern; a piece that is a token is one token;
otherwise merge its bytes, always the adjacent pair whose merged bytes have the lowest rank, leftmost first. A heap
keeps a long piece (a pasted blob with no spaces) at O(n log n) where a scan per merge is O(n²).
tests/bot/providers/test_tokens.py holds the result to bpe-openai's token ids.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator

# What each Unicode class the patterns use holds within ASCII (Lt, Lm, Lo and M hold nothing there).
_ASCII_MEMBERS = {"L": "A-Za-z", "Lu": "A-Z", "Ll": "a-z", "Lt": "", "Lm": "", "Lo": "", "M": "", "N": "0-9"}
_CLASS = re.compile(r"\\p\{(\w+)\}")


class BytePairEncoding:
    """One encoding: its tokens' ranks and its split pattern."""

    def __init__(self, ranks: dict[bytes, int], pattern: str) -> None:
        self._ranks = ranks
        self._pattern = pattern
        # Most text people send is ASCII: the standard library's `re` splits it with the pattern's ASCII
        # equivalent several times faster than the `regex` package, which the Unicode classes need.
        self._split_ascii = re.compile(ascii_equivalent(pattern), re.ASCII).findall
        self._split_unicode: Callable[[str], list[str]] | None = None

    def tokens(self, text: str) -> Iterator[bytes]:
        """The bytes of each token of `text`, in order; special-token lookalikes are ordinary text."""
        words = self._split_ascii(text) if text.isascii() else self._split(_without_lone_surrogates(text))
        ranks = self._ranks
        for word in words:
            piece = word.encode()
            if piece in ranks:
                yield piece
            else:
                yield from self._merged(piece)

    def _split(self, text: str) -> list[str]:
        if self._split_unicode is None:
            import regex  # only once text beyond ASCII arrives

            self._split_unicode = regex.compile(self._pattern).findall
        return self._split_unicode(text)

    def _merged(self, piece: bytes) -> list[bytes]:
        """`piece` as tokens: its bytes merged pair by pair, the lowest-ranked pair first (leftmost on a tie)."""
        ranks = self._ranks
        size = len(piece)
        # The piece's parts as a linked list of their start offsets; a part ends where the next begins.
        following = list(range(1, size + 1))
        preceding = list(range(-1, size - 1))
        alive = [True] * size
        # A candidate merge of the part at `start` with the next one, keyed by the merged bytes' rank; it is
        # stale once either part has changed, which always moves the merged bytes' end.
        heap: list[tuple[int, int, int]] = []

        def offer(start: int) -> None:
            middle = following[start]
            if middle < size:
                end = following[middle]
                rank = ranks.get(piece[start:end])
                if rank is not None:
                    heapq.heappush(heap, (rank, start, end))

        for start in range(size - 1):
            offer(start)
        while heap:
            _, start, end = heapq.heappop(heap)
            middle = following[start]
            if not alive[start] or middle >= size or following[middle] != end:
                continue  # stale
            alive[middle] = False
            following[start] = end
            if end < size:
                preceding[end] = start
            if preceding[start] >= 0:
                offer(preceding[start])
            offer(start)
        parts, start = [], 0
        while start < size:
            parts.append(piece[start : following[start]])
            start = following[start]
        return parts


def ascii_equivalent(pattern: str) -> str:
    """`pattern` with its Unicode classes (`\\p{L}`…) written as their ASCII members: the same matches on ASCII text."""
    out: list[str] = []
    in_set = False
    position = 0
    while position < len(pattern):
        found = _CLASS.match(pattern, position)
        if found:
            members = _ASCII_MEMBERS[found[1]]
            out.append(members if in_set else f"[{members}]")
            position = found.end()
            continue
        char = pattern[position]
        if char == "\\":
            out.append(pattern[position : position + 2])
            position += 2
            continue
        if char == "[" and not in_set:
            in_set = True
        elif char == "]" and in_set:
            in_set = False
        out.append(char)
        position += 1
    return "".join(out)


def _without_lone_surrogates(text: str) -> str:
    """`text` with any lone surrogate (a JSON payload may carry one) as U+FFFD, as tiktoken encodes it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
