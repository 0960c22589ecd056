"""slack/manifest.yaml is generated from the command registry and matches the code both ways."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack.manifest import manifest, manifest_yaml
from bot.chat.engine import Engine
from bot.commands.catalog import command_registry
from tests.harness.slack_manifest import MANIFEST


def test_the_shipped_manifest_is_what_the_command_registry_generates() -> None:
    assert MANIFEST.read_text() == manifest_yaml(command_registry()), (
        "slack/manifest.yaml is out of date: python -m bot slack-manifest > slack/manifest.yaml"
    )


def test_every_command_is_in_the_manifest_and_nothing_else(engine: Engine) -> None:
    shipped = yaml.safe_load(MANIFEST.read_text())
    listed = {c["command"].lstrip("/") for c in shipped["features"]["slash_commands"]}
    assert listed == {spec.name for spec in engine.commands}


@pytest.mark.parametrize("url", [None, "https://bot.example.org/slack/events"])
def test_the_yaml_reads_back_as_the_manifest(url: str | None) -> None:
    commands = command_registry("tb-")
    assert yaml.safe_load(manifest_yaml(commands, url=url)) == manifest(commands, url=url)


def test_the_manifest_asks_for_the_events_and_scopes_the_adapter_uses() -> None:
    shipped = yaml.safe_load(MANIFEST.read_text())
    events = set(shipped["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.channels", "message.im"} <= events
    scopes = set(shipped["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/update/delete/postEphemeral, users.info, url_private downloads, files_upload_v2
    assert {"chat:write", "users:read", "files:read", "files:write", "commands", "app_mentions:read"} <= scopes


def test_the_manifest_turns_on_the_assistant_pane() -> None:
    shipped = yaml.safe_load(MANIFEST.read_text())
    assert shipped["features"]["assistant_view"]["assistant_description"]
    assert "assistant:write" in shipped["oauth_config"]["scopes"]["bot"]  # setStatus, setTitle, setSuggestedPrompts
    events = set(shipped["settings"]["event_subscriptions"]["bot_events"])
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= events


def test_the_cli_prints_the_manifest_with_the_prefix_and_http_urls(tmp_path: Path) -> None:
    env: dict[str, Any] = {"COMMAND_PREFIX": "tb-", "PATH": "/usr/bin:/bin"}
    url = "https://bot.example.org/slack/events"
    out = subprocess.run(
        [sys.executable, "-m", "bot", "slack-manifest", "--url", url], cwd=tmp_path, env=env, capture_output=True,
        text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    printed = yaml.safe_load(out)
    commands = printed["features"]["slash_commands"]
    assert {c["command"] for c in commands} == {f"/tb-{spec.name}" for spec in command_registry()}
    assert {c["url"] for c in commands} == {url} and printed["settings"]["socket_mode_enabled"] is False
    assert printed["settings"]["event_subscriptions"]["request_url"] == url
