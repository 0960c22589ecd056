"""/tools: the team's MCP servers, their tools, and which are on in this channel (admins turn them on or off)."""

from __future__ import annotations

from bot.commands.registry import CommandContext, CommandSpec, Subcommand, admins_only, exactly
from bot.mcp.servers import McpCallFailed, McpTool


def _tool_line(tool: McpTool) -> str:
    return f"{tool.name} ({'reads' if tool.read_only else 'acts: asks the asker first'})"


async def show_tools(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Each configured server, on or off here, with its tools."""
    channel = ctx.services.tool_servers
    if not channel.servers.configs:
        await ctx.responder.send_text("No MCP servers are configured (MCP_SERVERS_FILE is not set).")
        return
    on = await channel.enabled(ctx.message)
    lines = [f"MCP servers here (admins: /{ctx.command.name} enable|disable <server>):"]
    for name in channel.servers.configs:
        try:
            listed = ", ".join(_tool_line(t) for t in await channel.servers.list_tools(name)) or "no tools"
        except McpCallFailed as exc:
            listed = f"its tools cannot be listed now: {exc}"
        lines.append(f"• {name}: {'on' if name in on else 'off'} here; {listed}")
    await ctx.responder.send_text("\n".join(lines))


def _require_admin(ctx: CommandContext) -> None:
    if not ctx.message.author.is_admin:
        raise admins_only(ctx, f"Only admins can turn tools on or off; /{ctx.command.name} is open to everyone.")


async def enable_server(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Turn a server's tools on in this channel."""
    _require_admin(ctx)
    await ctx.services.tool_servers.enable(ctx.message, rest[0])
    await ctx.responder.send_text(f"{rest[0]}'s tools are on in this channel.")


async def disable_server(ctx: CommandContext, rest: tuple[str, ...]) -> None:
    """Turn a server's tools off in this channel."""
    _require_admin(ctx)
    was_on = await ctx.services.tool_servers.disable(ctx.message, rest[0])
    await ctx.responder.send_text(f"{rest[0]}'s tools are {'now' if was_on else 'already'} off in this channel.")


TOOLS = CommandSpec.table(
    "tools",
    "the team's MCP tools and which are on in this channel (admins turn them on)",
    {
        "": Subcommand(show_tools, described="nothing (show them)"),
        "enable": Subcommand(enable_server, "<server>", exactly(1)),
        "disable": Subcommand(disable_server, "<server>", exactly(1)),
    },
    default="",
    usage="/tools [enable <server> | disable <server>]",
)
