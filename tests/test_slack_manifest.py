"""slack/manifest.yaml matches the code: the same commands both ways, and the events the adapter needs."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.chat.engine import Engine

MANIFEST = Path(__file__).resolve().parents[1] / "slack" / "manifest.yaml"


def test_every_command_is_in_the_manifest_and_nothing_else(engine: Engine) -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    listed = {c["command"].lstrip("/") for c in manifest["features"]["slash_commands"]}
    assert listed == {spec.name for spec in engine.commands}


def test_the_manifest_asks_for_the_events_and_scopes_the_adapter_uses() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.channels", "message.im"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/update/delete/postEphemeral, users.info, url_private downloads, files_upload_v2
    assert {"chat:write", "users:read", "files:read", "files:write", "commands", "app_mentions:read"} <= scopes
