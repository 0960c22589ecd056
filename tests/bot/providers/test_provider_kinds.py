"""What is particular to a kind of server stays in its provider: finish reasons become ours, and a kind that
takes one system message only gets them merged. An operator names each provider's kind in PROVIDER_<NAME>_KIND
(OPENAI_KIND for the default provider), read like the keys and checked at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_engine
from bot.errors import ConfigError
from bot.providers.kinds import OPENAI_COMPATIBLE, SINGLE_SYSTEM, ProviderKind
from bot.providers.llm import Finish, PromptMessage
from bot.providers.openai_chat import OpenAIChat, make_client
from bot.providers.registry import Provider, Providers
from bot.settings import DEFAULT_SYSTEM_PROMPT, load_settings
from bot.tools.registry import QUOTING_RULE
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.harness.console import there_and_back
from tests.harness.media import run
from tests.harness.messages import message
from tests.harness.settings import settings_read

PROMPT = [
    PromptMessage("system", "You are terse."),
    PromptMessage("system", "Recalled: the user likes tea."),
    PromptMessage("user", "hi"),
    PromptMessage("system", "Answer now."),
]


async def test_a_kind_that_takes_one_system_message_gets_them_merged_at_the_start(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    strict = Provider("strict", fake_openai.base_url, kind=ProviderKind("strict", accepts_second_system_message=False))
    client = make_client(make_settings(), strict)
    try:
        await OpenAIChat(client, provider=strict).chat(PROMPT, model="gemma3", max_output_tokens=50)
        await OpenAIChat(client).chat(PROMPT, model="gpt-4.1-mini", max_output_tokens=50)
    finally:
        await client.close()
    merged, several = fake_openai.chat_requests()
    assert [(m["role"], m["content"]) for m in merged["messages"]] == [
        ("system", "You are terse.\n\nRecalled: the user likes tea.\n\nAnswer now."),
        ("user", "hi"),
    ]
    assert [m["role"] for m in several["messages"]] == ["system", "system", "user", "system"]


@pytest.mark.parametrize(
    ("said", "finish"),
    [("stop", Finish.DONE), ("length", Finish.OUTPUT_LIMIT), ("eos", Finish.DONE)],
)
async def test_a_servers_finish_reason_becomes_ours(
    make_settings: Any, fake_openai: FakeOpenAI, said: str, finish: Finish
) -> None:
    fake_openai.enqueue(Reply("done", finish_reason=said))
    client = make_client(make_settings())
    try:
        result = await OpenAIChat(client).chat(
            [PromptMessage("user", "hi")], model="gpt-4.1-mini", max_output_tokens=50
        )
    finally:
        await client.close()
    assert result.finish_reason is finish


# A key pasted into a kind's variable by mistake: no error or log line may repeat it.
MISPLACED_KEY = "sk-proj-d41d8cd98f00b204e980"


@pytest.fixture
async def fake_vllm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


def roles_and_texts(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in body["messages"]]


async def test_a_provider_set_to_single_system_gets_one_system_message_and_the_default_its_several(
    fake_openai: FakeOpenAI, fake_vllm: FakeOpenAI, tmp_path: Path
) -> None:
    # With tools on (the default), every prompt has a second system message: the tools' quoting rule.
    kind = {"FETCH_ENABLED": "true", "PROVIDER_VLLM_KIND": "single-system"}
    _, said = await there_and_back(fake_openai, fake_vllm, tmp_path, "vllm", "gemma-3-12b-it", **kind)
    assert [line for line in said if line.startswith("Hello")] == ["Hello from vllm.", "Hello from OpenAI."]
    (merged,) = fake_vllm.chat_requests()
    (several,) = fake_openai.chat_requests()
    assert roles_and_texts(merged) == [
        ("system", f"{DEFAULT_SYSTEM_PROMPT}\n\n{QUOTING_RULE}"),
        ("user", "hello vllm"),
    ]
    assert roles_and_texts(several) == [
        ("system", DEFAULT_SYSTEM_PROMPT),
        ("system", QUOTING_RULE),
        ("user", "hello openai"),
    ]


async def test_openai_kind_single_system_merges_the_default_providers_system_messages(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(openai_kind="single-system", fetch_enabled=True)
    async with open_engine(settings) as engine:
        said = await run(engine, message("hi"))
    assert said.streams and not said.errors
    (body,) = fake_openai.chat_requests()
    assert roles_and_texts(body) == [("system", f"{DEFAULT_SYSTEM_PROMPT}\n\n{QUOTING_RULE}"), ("user", "hi")]


def test_kinds_are_read_from_dotenv_and_the_environment_in_either_case_the_environment_winning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = (
        "PROVIDERS=vllm=http://localhost:8000/v1,llamacpp=http://localhost:8080/v1,groq=https://api.groq.com/openai/v1\n"
        "provider_vllm_kind=Single-System\nPROVIDER_LLAMACPP_KIND=single-system\nPROVIDER_GROQ_KIND=\n"
    )
    environment = {"PROVIDER_LLAMACPP_KIND": "openai", "OPENAI_KIND": " SINGLE-SYSTEM "}
    settings = settings_read(tmp_path, monkeypatch, dotenv, **environment)
    kinds = {p.name: p.kind for p in Providers.from_settings(settings).all()}
    # An empty variable means not set: groq keeps the default kind.
    assert kinds == {
        "openai": SINGLE_SYSTEM,
        "vllm": SINGLE_SYSTEM,
        "llamacpp": OPENAI_COMPATIBLE,
        "groq": OPENAI_COMPATIBLE,
    }


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"OPENAI_KIND": MISPLACED_KEY}, "OPENAI_KIND: names no provider kind; the kinds are: openai ("),
        (
            {"PROVIDERS": "vllm=http://localhost:8000/v1", "PROVIDER_VLLM_KIND": MISPLACED_KEY},
            "PROVIDER_VLLM_KIND: names no provider kind; the kinds are: openai (",
        ),
        (
            {"PROVIDERS": "vllm=http://localhost:8000/v1", "PROVIDER_VLLM_KIND": "single_system"},
            "single-system (a chat template that takes one system message, first",
        ),
        (
            {"PROVIDERS": "vllm=http://localhost:8000/v1", "PROVIDER_VLM_KIND": MISPLACED_KEY},
            "PROVIDER_VLM_KIND is set, but PROVIDERS names no provider it belongs to",
        ),
        (
            {"PROVIDER_OPENAI_KIND": "single-system"},
            "PROVIDER_OPENAI_KIND is set, but PROVIDERS names no provider it belongs to "
            "(the default provider's is OPENAI_KIND)",
        ),
    ],
)
def test_a_bad_kind_stops_the_start_naming_its_setting_and_the_kinds_never_its_value(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], said: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings(env_file=None)
    assert said in str(raised.value)
    assert MISPLACED_KEY not in str(raised.value)
