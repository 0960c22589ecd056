"""The reply splitter: every chunk fits, nothing is lost, code blocks stay whole."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.common.text_split import split_chunks, split_message


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello", 100) == ["hello"]


def test_splits_on_paragraphs_then_lines() -> None:
    text = "para one " * 10 + "\n\n" + "para two " * 10
    assert split_message(text, 120) == ["para one " * 10 + "\n\n", "para two " * 10]


def test_a_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"print({i})" for i in range(40))
    text = f"Here:\n```python\n{code}\n```\nDone."
    chunks = split_message(text, 200)
    assert all(len(c) <= 200 for c in chunks)
    assert chunks[0].startswith("Here:\n```python\n") and chunks[0].endswith("```")
    assert all(c.startswith("```python\n") for c in chunks[1:])
    assert all(c.count("```") % 2 == 0 for c in chunks)  # every chunk renders its block closed
    assert chunks[-1].endswith("```\nDone.")


pieces = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30),
    st.sampled_from(["\n", "\n\n", " ", "```py\n", "\n```\n", "```\n"]),
)


@given(st.lists(pieces, max_size=80), st.integers(min_value=40, max_value=400))
def test_every_chunk_fits_and_the_pieces_are_the_text(parts: list[str], limit: int) -> None:
    text = "".join(parts)
    chunks = split_chunks(text, limit)
    assert all(len(chunk.text) <= limit for chunk in chunks)
    assert "".join(chunk.piece for chunk in chunks) == text
    assert all(chunk.piece for chunk in chunks[:-1])  # progress: no empty message in the middle
