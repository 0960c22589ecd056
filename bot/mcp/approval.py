"""The asker approves each call of a tool that acts, seeing the tool and its arguments; no answer in time is no.

A responder that can ask (the console; Slack and Discord buttons later) implements `AsksApproval`: only the
asker's answer counts. Where the platform cannot ask yet, a tool that acts does not run. Every refusal is
recorded in the audit and told to the model (the tool loop says the call was not approved).
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from bot.mcp.audit import AuditedCalls
from bot.tools.registry import Tool, ToolUse

ARGUMENTS_SHOWN = 500  # characters of the arguments in the question; the audit keeps them whole


@runtime_checkable
class AsksApproval(Protocol):
    """A responder that can put a yes/no question to the asker alone."""

    async def ask_approval(self, question: str, asker_id: str, seconds: float) -> bool | None:
        """True or False: the asker's answer; None: no answer within `seconds`."""


@runtime_checkable
class NamedTool(Protocol):
    """What the question shows of a tool: its server and its own name (an MCP tool's)."""

    @property
    def server(self) -> str: ...

    @property
    def tool(self) -> str: ...


def question(server: str, tool: str, arguments: dict[str, Any]) -> str:
    """`Allow <server>.<tool>(<args>)? [y/N]`, the arguments as JSON, cut if long."""
    shown = json.dumps(arguments, ensure_ascii=False)[1:-1] if arguments else ""
    if len(shown) > ARGUMENTS_SHOWN:
        shown = shown[:ARGUMENTS_SHOWN] + "…"
    return f"Allow {server}.{tool}({shown})? [y/N]"


class AskerApproval:
    """The tool loop's Approval for MCP tools that act: the asker says yes, each time."""

    def __init__(self, calls: AuditedCalls, seconds: float) -> None:
        self._calls = calls
        self._seconds = seconds

    async def approve(self, tool: Tool, arguments: dict[str, Any], use: ToolUse) -> bool:
        """True when the asker allowed this call; a refusal is recorded with why."""
        if not isinstance(tool, NamedTool):  # only MCP tools act; a built-in one that did would be refused
            return False
        responder, message = use.responder, use.message
        if not isinstance(responder, AsksApproval):
            why = "this platform cannot ask for approval yet, so tools that act do not run here"
        else:
            answer = await responder.ask_approval(
                question(tool.server, tool.tool, arguments), message.author.id, self._seconds
            )
            if answer:
                return True
            why = f"not approved by {message.author.id}" if answer is False else f"no answer in {self._seconds:g} s"
        await self._calls.refused(message, tool.server, tool.tool, arguments, why)
        return False
