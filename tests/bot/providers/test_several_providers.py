"""Several providers: `/model set ollama/llama3.1:8b` moves a channel to a second server (its own address and
key), metered and priced under the full name; other names go whole to the default server.

Two loopback servers through the real `openai` client: one plays OpenAI, one plays Ollama.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_engine
from bot.errors import ConfigError
from bot.settings import load_settings
from tests.fakes.openai_server import OLLAMA_UNKNOWN_MODEL, FakeOpenAI, InvalidKey, RefusingPort, Reply
from tests.harness.console import bot_env, run_bot, there_and_back
from tests.harness.media import ledger, run
from tests.harness.messages import message
from tests.harness.settings import settings_read

OPENAI_KEY = "test-key-not-secret"
OLLAMA_KEY = "ollama-key-d41d8cd98f"


@pytest.fixture
async def fake_ollama() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


def chat_models(fake: FakeOpenAI) -> list[str]:
    return [body["model"] for body in fake.chat_requests()]


def chat_keys(fake: FakeOpenAI) -> list[str]:
    return [r.headers.get("Authorization", "") for r in fake.requests_to("/v1/chat/completions")]


async def test_a_console_channel_switched_to_ollama_chats_there_for_free_and_back_on_openai_priced(
    fake_openai: FakeOpenAI, fake_ollama: FakeOpenAI, tmp_path: Path
) -> None:
    env, said = await there_and_back(fake_openai, fake_ollama, tmp_path, "ollama", "llama3.1:8b")
    assert said == [
        "This channel now uses ollama/llama3.1:8b (on ollama).",
        "Hello from ollama.",
        "This channel now uses gpt-4.1-mini (on openai).",
        "Started a fresh conversation.",
        "Hello from OpenAI.",
    ]
    # Each server got its own turn, under the name it knows; the OpenAI key never went to Ollama.
    assert chat_models(fake_ollama) == ["llama3.1:8b"]
    assert chat_models(fake_openai) == ["gpt-4.1-mini"]
    assert chat_keys(fake_ollama) == ["Bearer not-needed"]
    assert all(OPENAI_KEY not in str(r.headers) for r in fake_ollama.requests)
    assert chat_keys(fake_openai) == [f"Bearer {OPENAI_KEY}"]
    settings = load_settings(env_file=None, database_url=env["DATABASE_URL"])
    chats = [(model, cost) for kind, model, cost, _ in await ledger(settings) if kind == "chat"]
    assert chats[0] == ("ollama/llama3.1:8b", 0)
    assert chats[1][0] == "gpt-4.1-mini" and chats[1][1] > 0


async def test_a_providers_key_goes_to_it_alone_and_its_prices_file_entry_prices_it(
    make_settings: Any, fake_openai: FakeOpenAI, fake_ollama: FakeOpenAI, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[chat."ollama/llama3.1:8b"]\ninput = 1.00\noutput = 2.00\n', "utf-8")
    settings = make_settings(
        providers=f"ollama={fake_ollama.base_url}",
        provider_api_keys={"PROVIDER_OLLAMA_API_KEY": OLLAMA_KEY},
        chat_model="ollama/llama3.1:8b",
        prices_file=prices,
    )
    fake_ollama.enqueue(Reply("ok", prompt_tokens=1_000, completion_tokens=500))
    async with open_engine(settings) as engine:
        said = await run(engine, message("hi"))
    assert said.streams and not said.errors
    assert chat_keys(fake_ollama) == [f"Bearer {OLLAMA_KEY}"]
    assert fake_openai.chat_requests() == []
    assert all(OLLAMA_KEY not in str(r.headers) for r in fake_openai.requests)
    # 1,000 input tokens at $1/M and 500 output at $2/M: $0.002, in nano-dollars.
    assert [(m, c) for k, m, c, _ in await ledger(settings) if k == "chat"] == [("ollama/llama3.1:8b", 2_000_000)]


@pytest.mark.parametrize("name", ["meta-llama/Llama-3.1-8B", "openai/gpt-4.1"])
async def test_a_name_whose_prefix_is_no_provider_goes_whole_to_the_default_server(
    make_settings: Any, fake_openai: FakeOpenAI, fake_ollama: FakeOpenAI, name: str
) -> None:
    settings = make_settings(providers=f"ollama={fake_ollama.base_url}", allowed_chat_models=name, free_models=name)
    async with open_engine(settings) as engine:
        assert (await run(engine, message(f"/model set {name}", admin=True))).texts
        said = await run(engine, message("hi"))
    assert said.streams and not said.errors
    assert chat_models(fake_openai) == [name]
    assert fake_ollama.requests == []
    assert [(m, c) for k, m, c, _ in await ledger(settings) if k == "chat"] == [(name, 0)]


async def test_model_shows_each_allowed_model_with_its_provider(make_settings: Any, fake_ollama: FakeOpenAI) -> None:
    settings = make_settings(
        providers=f"ollama={fake_ollama.base_url}", allowed_chat_models="ollama/llama3.1:8b", free_models="ollama/*"
    )
    async with open_engine(settings) as engine:
        shown = await run(engine, message("/model"))
        refused = await run(engine, message("/model set ollama/qwen3:4b", admin=True))
    assert shown.texts[0][0] == (
        "This channel uses gpt-4.1-mini (on openai). Allowed: gpt-4.1-mini (on openai), ollama/llama3.1:8b (on ollama)."
    )
    assert refused.errors[0].startswith("Model 'ollama/qwen3:4b' is not allowed here.")


async def test_a_provider_that_is_down_gets_the_usual_apology_names_its_setting_and_charges_nothing(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    down = RefusingPort()
    settings = make_settings(providers=f"ollama={down.base_url}", chat_model="ollama/llama3.1:8b", free_models="")
    prices_free = make_settings(
        providers=f"ollama={down.base_url}", chat_model="ollama/llama3.1:8b", free_models="ollama/*"
    )
    with pytest.raises(ConfigError, match=r"CHAT_MODEL: No price for model ollama/llama3\.1:8b"):
        async with open_engine(settings):
            pass
    async with open_engine(prices_free) as engine:
        user = await run(engine, message("hello", platform="slack"))
        admin = await run(engine, message("hello", admin=True, user="boss", platform="slack"))
    assert user.errors == ["Could not reach the model's server. Please try again in a moment."]
    assert admin.errors[0].endswith("(PROVIDERS (its ollama= entry)): is the model server running there?")
    assert fake_openai.chat_requests() == []
    held = [(cost, state) for kind, _, cost, state in await ledger(prices_free) if kind == "chat"]
    assert held == [(0, "released"), (0, "released")]  # reserved, then released: nothing charged


async def test_faults_of_another_provider_name_it_and_its_settings_and_never_its_key(
    make_settings: Any, fake_ollama: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        providers=f"ollama={fake_ollama.base_url}",
        provider_api_keys={"PROVIDER_OLLAMA_API_KEY": OLLAMA_KEY},
        chat_model="ollama/llama9:8b",
        free_models="ollama/*",
    )
    fake_ollama.enqueue(OLLAMA_UNKNOWN_MODEL, InvalidKey())
    caplog.set_level(logging.DEBUG)
    async with open_engine(settings) as engine:
        missing = await run(engine, message("hello", admin=True))
        refused = await run(engine, message("hello", admin=True, channel="c2"))
    assert missing.errors[0].endswith(
        "The model server of provider 'ollama' has no model 'llama9:8b' ('ollama/llama9:8b', named by CHAT_MODEL). "
        "Set CHAT_MODEL to a model it serves (its /v1/models lists them), or check PROVIDERS (its ollama= entry)."
    )
    assert refused.errors == [
        "The bot's API key for provider 'ollama' was refused; ask an admin to check PROVIDER_OLLAMA_API_KEY."
    ]
    assert OLLAMA_KEY not in caplog.text and all(OLLAMA_KEY not in e for e in missing.errors + refused.errors)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        missing.errors[0].split("\n", 1)[1],
        refused.errors[0],
    ]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("openai=http://localhost:11434/v1", "'openai' is the default provider's name"),
        ("ollama=ftp://localhost:11434/v1", "provider 'ollama': its base URL must be an http:// or https:// URL"),
        ("Ollama=http://localhost:11434/v1", "provider name 'Ollama': use lower-case letters"),
        ("ollama=http://a/v1,ollama=http://b/v1", "provider 'ollama' is named twice"),
        ("my-x=http://a/v1,my_x=http://b/v1", "provider 'my_x' is named twice (as 'my-x' too"),
        ("http://localhost:11434/v1", "'http://localhost:11434/v1' is not name=base_url"),
    ],
)
def test_a_bad_providers_value_is_refused_at_start_naming_the_setting(value: str, said: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env_file=None, providers=value)
    assert f"PROVIDERS: {said}" in str(raised.value)


async def test_the_bot_will_not_start_with_a_key_for_no_provider_and_never_prints_the_key(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    env = bot_env(fake_openai, tmp_path) | {
        "PROVIDERS": "ollama=http://user:hunter2-pass@localhost:11434/v1",
        "PROVIDER_OLAMA_API_KEY": OLLAMA_KEY,  # a typo: the key would silently go unused
    }
    code, out, err = await run_bot("console", stdin="hello\n", env=env, cwd=tmp_path)
    assert code == 2
    assert "PROVIDER_OLAMA_API_KEY is set, but PROVIDERS names no provider it belongs to" in err
    assert OLLAMA_KEY not in out + err and "hunter2" not in out + err
    assert fake_openai.chat_requests() == []


async def test_a_provider_key_from_the_environment_is_scrubbed_from_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDERS", "groq=https://api.groq.com/openai/v1")
    monkeypatch.setenv("PROVIDER_GROQ_API_KEY", OLLAMA_KEY)
    settings = load_settings(env_file=None)
    assert OLLAMA_KEY in settings.secrets()
    assert OLLAMA_KEY not in repr(settings)


async def test_media_models_may_not_name_another_provider(make_settings: Any, fake_ollama: FakeOpenAI) -> None:
    settings = make_settings(providers=f"ollama={fake_ollama.base_url}", image_model="ollama/flux")
    with pytest.raises(ConfigError, match="IMAGE_MODEL: 'ollama/flux' names provider 'ollama'"):
        async with open_engine(settings):
            pass


def test_a_provider_key_is_read_from_dotenv_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = (
        "PROVIDERS=ollama=http://localhost:11434/v1,groq=https://api.groq.com/openai/v1\n"
        "PROVIDER_OLLAMA_API_KEY=from-dotenv-1\nPROVIDER_GROQ_API_KEY=from-dotenv-2\n"
    )
    settings = settings_read(tmp_path, monkeypatch, dotenv, PROVIDER_GROQ_API_KEY="from-environment")
    keys = {name: key.get_secret_value() for name, key in settings.provider_api_keys.items()}
    assert keys == {"PROVIDER_OLLAMA_API_KEY": "from-dotenv-1", "PROVIDER_GROQ_API_KEY": "from-environment"}
