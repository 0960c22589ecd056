"""The name of the Slack workspace the bot token belongs to, for operators' `python -m bot teams`."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings


async def workspace_names(settings: Settings) -> dict[str, str]:
    """{team id: workspace name} from `auth.test`, which every bot token may call (no extra scope)."""
    if settings.slack_bot_token is None:
        return {}
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    answer = await client.auth_test()
    team_id, name = answer.get("team_id"), answer.get("team")
    return {str(team_id): str(name)} if team_id and name else {}
