from pathlib import Path
from typing import Any

import pytest

from bot.app import open_engine
from bot.errors import ConfigError
from bot.settings import load_settings


def test_defaults_need_nothing_but_allow_a_missing_key() -> None:
    settings = load_settings(env_file=None)
    assert settings.database_url == "sqlite:///teambot.sqlite3"
    assert settings.openai_api_key is None
    assert settings.input_token_budget == settings.max_context_tokens - settings.max_output_tokens


def test_a_bad_value_names_the_variable_and_the_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONTEXT_TOKENS", "lots")
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None)
    text = str(err.value)
    assert "MAX_CONTEXT_TOKENS: Input should be a valid integer" in text
    assert "LOG_LEVEL" in text


def test_output_budget_must_leave_room_for_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONTEXT_TOKENS", "1000")
    monkeypatch.setenv("MAX_OUTPUT_TOKENS", "1000")
    with pytest.raises(ConfigError, match=r"MAX_OUTPUT_TOKENS \(1000\) must be smaller than MAX_CONTEXT_TOKENS"):
        load_settings(env_file=None)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: must look like sqlite:///"),
        ("OPENAI_BASE_URL", "localhost:11434", "OPENAI_BASE_URL: must be an http:// or https:// URL"),
        ("OPENAI_TIMEOUT", "-1", "OPENAI_TIMEOUT: Input should be greater than 0"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=expected):
        load_settings(env_file=None)


def test_dotenv_file_is_read_and_empty_means_unset(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    env = tmp_path / ".env"
    env.write_text("CHAT_MODEL=gpt-4o-mini\nOPENAI_API_KEY=\nLOG_LEVEL=debug\n")
    settings = load_settings(env_file=env)
    assert settings.chat_model == "gpt-4o-mini"
    assert settings.openai_api_key is None
    assert settings.log_level == "DEBUG"


def test_the_key_never_shows_in_the_settings_repr() -> None:
    settings = load_settings(env_file=None, openai_api_key="sk-very-secret-value")
    assert "sk-very-secret-value" not in repr(settings)
    assert settings.secrets() == ["sk-very-secret-value"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_APP_TOKEN set without SLACK_BOT_TOKEN"),
        ({"SLACK_SIGNING_SECRET": "abcdef0123"}, "SLACK_SIGNING_SECRET set without SLACK_BOT_TOKEN"),
    ],
)
def test_slack_settings_without_the_bot_token_are_refused_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=expected) as err:
        load_settings(env_file=None)
    assert not any(value in str(err.value) for value in env.values())  # no token is echoed


def test_slack_tokens_of_the_right_kinds_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    assert load_settings(env_file=None).slack_app_token is not None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"image_size": "5x5"}, "IMAGE_SIZE: gpt-image-1 cannot draw '5x5'; use one of 1024x1024"),
        ({"image_quality": "ultra"}, "IMAGE_QUALITY: gpt-image-1 has no quality 'ultra'; use one of "),
        (
            {"allowed_chat_models": "gpt-4o-mini,my-finetune"},
            "ALLOWED_CHAT_MODELS: .*my-finetune.* Or take my-finetune off the list.",
        ),
    ],
)
async def test_settings_that_would_fail_every_user_are_refused_at_start(
    make_settings: Any, overrides: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        async with open_engine(make_settings(**overrides)):
            pass


async def test_a_bad_image_size_stops_the_bot_at_start_naming_the_variable(tmp_path: Path) -> None:
    from tests.harness.console import run_bot

    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "IMAGE_SIZE": "5x5"}
    code, out, err = await run_bot("console", stdin="hello\n", env=env, cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err.startswith("IMAGE_SIZE: gpt-image-1 cannot draw '5x5'") and "Traceback" not in err


def test_empty_embedding_dimensions_means_the_models_own_size(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    assert load_settings(env_file=None).embedding_dimensions == 512  # unset: the default
    env = tmp_path / ".env"
    env.write_text("EMBEDDING_DIMENSIONS=\n")
    assert load_settings(env_file=env).embedding_dimensions is None  # empty in .env
    monkeypatch.setenv("EMBEDDING_DIMENSIONS", "256")
    assert load_settings(env_file=env).embedding_dimensions == 256  # the environment wins over .env
    monkeypatch.setenv("EMBEDDING_DIMENSIONS", "")
    assert load_settings(env_file=None).embedding_dimensions is None  # empty in the environment
    assert load_settings(env_file=None, embedding_dimensions=1024).embedding_dimensions == 1024  # explicit wins
