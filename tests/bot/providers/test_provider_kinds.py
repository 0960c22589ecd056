"""What is particular to a kind of server stays in its provider: finish reasons become ours, and a kind that
takes one system message only gets them merged."""

from __future__ import annotations

from typing import Any

import pytest

from bot.providers.llm import Finish, PromptMessage
from bot.providers.openai_chat import OpenAIChat, make_client
from bot.providers.registry import Provider, ProviderKind
from tests.fakes.openai_server import FakeOpenAI, Reply

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
