from bot.chat.tokens import TOKENS_PER_MESSAGE, TokenCounter, encoding_name_for


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
