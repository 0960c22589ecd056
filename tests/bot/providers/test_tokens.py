import bpe_openai
import pytest
from bpe_openai import compat
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import ConfigError
from bot.providers.bpe import BytePairEncoding
from bot.providers.encodings import ENCODINGS, MODEL_ENCODINGS
from bot.providers.tokens import TOKENS_PER_MESSAGE, TokenCounter, encoding_name_for

# What people send: prose, code, other scripts, emoji (with modifiers and joiners), runs of whitespace, numbers,
# contractions in both cases, and text that looks like special tokens (counted as the plain text it is).
SAMPLES = [
    "hello world",
    "Hello, world! I'M sure they'll say it's DON'T, we've, you'd.",
    "The quick brown fox jumps over the lazy dog. " * 40,
    "def mean(xs: list[float]) -> float:\n    return sum(xs) / len(xs)  # 0.5\n\n\tif x != y:\n\t\tpass\n",
    '{"key": [1, 2, 3], "url": "https://example.com/a/b?c=d&e=f"}',
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "Здравствуйте, мир! مرحبا بالعالم שלום עולם नमस्ते दुनिया",
    "emoji 🎉👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 and ☕️",
    "   leading and trailing   ",
    "a\n\n\n\nb\r\n\r\nc\t\t\td          e",
    " ",
    "",
    "<|endoftext|>",
    "before <|endoftext|> after <|endofprompt|> <|fim_prefix|><|fim_middle|><|fim_suffix|>",
    "1234567890 3.14159 1,000,000 2026-12-04T21:45:00Z",
    "ﬁne café naïve e\u0301 Å\u030a",  # ligature, precomposed and combining accents
    "ab\ud83dcd",  # a lone surrogate, as a JSON payload may carry one
    "tabs\x0b\x0c and separators \x1c\x1d\x1e\x1f x \x85 y \u2028 z \u00a0",  # which count as whitespace
    "ends in spaces and a newline   \n",
    "UPPER lower MiXeD camelCaseWord HTTPServer I'M 'S 'll'Ve don'T",
    "a" * 3000,  # one piece of thousands of bytes: merged pair by pair
    "QmFzZTY0IGJsb2JzIGFyZSBvbmUgbG9uZyB3b3Jk" * 40 + "==",
    "汉字" * 500,
]
COUNTED = ["o200k_base", "cl100k_base"]


@pytest.mark.parametrize("name", COUNTED)
def test_counts_are_the_same_token_ids_as_bpe_openai(name: str) -> None:
    counter = TokenCounter(name)
    reference = bpe_openai.get_encoding(name)
    for text in SAMPLES:
        expected = reference.encode_ordinary(text)
        assert counter.count(text) == len(expected), (name, text)
        assert counter.count_message(text) == len(expected) + TOKENS_PER_MESSAGE


@pytest.fixture(scope="module", params=COUNTED)
def encoding(request: pytest.FixtureRequest) -> tuple[str, BytePairEncoding, dict[bytes, int]]:
    ranks = ENCODINGS[request.param].ranks()
    return request.param, BytePairEncoding(ranks, ENCODINGS[request.param].pattern), ranks


# Runs of one repeated character: adjacent pairs tie on rank, and only the leftmost-first rule gives the ids.
TIES = ["aaa", "aaaaaaa", "=" * 33, "!!!!!", "1111111", "   x", "ababababa", "zzzz yyyyy " * 5]


def test_the_tokens_are_bpe_openais_ids_one_by_one(encoding: tuple[str, BytePairEncoding, dict[bytes, int]]) -> None:
    name, bpe, ranks = encoding
    reference = bpe_openai.get_encoding(name)
    for text in SAMPLES + TIES:
        assert [ranks[t] for t in bpe.tokens(text)] == reference.encode_ordinary(text), (name, text)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=120) | st.text(alphabet="ab =!1 \n", max_size=60))
def test_any_text_gives_bpe_openais_ids(encoding: tuple[str, BytePairEncoding, dict[bytes, int]], text: str) -> None:
    name, bpe, ranks = encoding
    assert [ranks[t] for t in bpe.tokens(text)] == bpe_openai.get_encoding(name).encode_ordinary(text)


@pytest.mark.parametrize("name", COUNTED)
def test_clipping_keeps_the_same_text_as_bpe_openai(name: str) -> None:
    counter = TokenCounter(name)
    reference = bpe_openai.get_encoding(name)
    text = SAMPLES[7] + SAMPLES[5] + SAMPLES[3]
    tokens = reference.encode_ordinary(text)
    for keep in range(len(tokens)):
        assert counter.clip(text, keep) == str(reference.decode(tokens[:keep]))
    assert counter.clip(text, len(tokens)) == text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_counts_as_bpe_openai_counts_it(text: str) -> None:
    for name in COUNTED:
        assert TokenCounter(name).count(text) == len(bpe_openai.get_encoding(name).encode_ordinary(text))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200, alphabet=st.characters(blacklist_categories=["Cs"])))
def test_a_text_never_counts_more_tokens_than_its_utf8_bytes(text: str) -> None:
    # What lets a turn judge a system prompt's room by its bytes, unread (storage/turn_records.py EagerQuestion).
    for name in COUNTED:
        assert TokenCounter(name).count(text) <= len(text.encode())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
def test_ascii_text_counts_as_bpe_openai_counts_it(text: str) -> None:
    # ASCII text takes its own path (the standard library's regular expressions): held to the same ids.
    for name in COUNTED:
        assert TokenCounter(name).count(text) == len(bpe_openai.get_encoding(name).encode_ordinary(text))


def test_token_count_is_exact_for_a_known_string() -> None:
    counter = TokenCounter("o200k_base")
    # o200k_base: "hello world" -> [24912, 2375]; "Hello, world!" -> [13225, 11, 2375, 0]
    assert counter.count("hello world") == 2
    assert counter.count("Hello, world!") == 4
    assert counter.count_message("hello world") == 2 + TOKENS_PER_MESSAGE


def test_special_token_lookalikes_in_user_text_count_as_plain_text() -> None:
    counter = TokenCounter("o200k_base")
    assert counter.count("<|endoftext|>") > 1


def test_current_models_use_o200k_and_the_operator_can_override() -> None:
    assert encoding_name_for("gpt-4o-mini") == "o200k_base"
    assert encoding_name_for("gpt-5-mini") == "o200k_base"
    assert encoding_name_for("gpt-4") == "cl100k_base"
    assert encoding_name_for("llama3.1:8b", override="cl100k_base") == "cl100k_base"


def test_every_model_bpe_openai_knows_gets_the_encoding_it_gave() -> None:
    for model in compat.MODEL_REGISTRY:
        assert encoding_name_for(model) == bpe_openai.encoding_name_for_model(model), model
        assert encoding_name_for(model.upper()) == bpe_openai.encoding_name_for_model(model), model
    assert set(MODEL_ENCODINGS) == set(compat.MODEL_REGISTRY)


def test_patterns_are_bpe_openais() -> None:
    from bpe_openai import registry

    for name, spec in ENCODINGS.items():
        assert spec.pattern == registry.ENCODING_CONSTRUCTORS[name]()["pat_str"]


def test_an_encoding_without_a_vocabulary_here_is_refused_with_the_known_ones() -> None:
    for name in ("r50k_base", "no_such_encoding"):
        with pytest.raises(ConfigError, match="TOKEN_ENCODING: unknown encoding") as refused:
            TokenCounter(name)
        assert "o200k_base" in str(refused.value)
    with pytest.raises(ConfigError):
        TokenCounter.for_model("davinci")  # a legacy model: its encoding (r50k) is not shipped
