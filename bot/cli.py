"""`python -m bot`: run the bot, or the console adapter with options."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from bot.errors import BadCommand, ConfigError, PlatformUnreachable, UserFacingError

EXIT_CONFIG = 2
EXIT_USAGE = 64  # EX_USAGE: a wrong `quota` command line
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: a platform could not be reached (discord-invite, discord-sync)


CONSOLE_LOG = Path("teambot.log")


def day(text: str) -> date:
    """A YYYY-MM-DD date; anything else is a usage error that says what is expected."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD, e.g. 2026-12-01") from None


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="teambot: a team GPT bot.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="start every configured adapter (the console when no platform is set up)")
    console = sub.add_parser("console", help="chat in the terminal; lines piped on stdin are handled in order")
    for chat in (console, run):  # `run` without platform tokens is the console: the same options
        chat.add_argument("--user", default="local-user", help="user id to speak as (default: local-user)")
        chat.add_argument("--channel", default="console", help="channel id; each channel is a conversation")
        chat.add_argument("--admin", action="store_true", help="speak as an admin (admin-only commands)")
        chat.add_argument("--files-dir", type=Path, default=Path("console-files"), help="where sent files go")

    calls = sub.add_parser("tool-calls", help="the audit of MCP tool calls: who, where, what, approved by, result")
    calls.add_argument("--team", help="one team (Discord guild / Slack team id / local); default all")
    calls.add_argument("--since", type=day, help="first day, YYYY-MM-DD (UTC; default: all)")
    calls.add_argument("--format", choices=("table", "csv", "json"), default="table")

    usage = sub.add_parser("usage", help="spend by day, user and kind, from the ledger")
    usage.add_argument("--team", help="one team (Discord guild / Slack team id / local); default all")
    usage.add_argument("--user", help="one user id")
    usage.add_argument("--since", type=day, help="first day, YYYY-MM-DD (default: this month)")
    usage.add_argument("--until", type=day, help="last day, YYYY-MM-DD")
    usage.add_argument("--format", choices=("table", "csv", "json"), default="table")

    quota = sub.add_parser("quota", help="show or change limits: show | set … | reset … (as /quota)")
    quota.add_argument(
        "--team", help="the team: a Slack team id or Discord server id (default: the database's only team)"
    )
    quota.add_argument("--by", help="who is making the change, for the audit trail (default: your login)")
    quota.add_argument("words", nargs=argparse.REMAINDER, help="e.g. set user U123 daily 0.50")

    sub.add_parser("teams", help="the teams this database has seen: ids, names, activity, this month's spend")

    sub.add_parser("discord-sync", help="register the slash commands with Discord now (DISCORD_GUILD_IDS or global)")
    sub.add_parser(
        "discord-invite", help="print the URL that adds the bot to a Discord server (logs in to find its id)"
    )
    manifest = sub.add_parser("slack-manifest", help="print the Slack app manifest for these commands (COMMAND_PREFIX)")
    manifest.add_argument("--url", help="HTTP mode: the public https://…/slack/events URL (default: Socket Mode)")

    migrate = sub.add_parser("migrate-db", help="copy a SQLite database into an empty PostgreSQL database")
    migrate.add_argument("--from", dest="source", required=True, help="sqlite:///path/to/teambot.sqlite3")
    migrate.add_argument("--to", dest="target", required=True, help="postgresql://user@host:5432/dbname")

    dashboard = sub.add_parser("dashboard", help="the web dashboard's sign-ins")
    dashboard_sub = dashboard.add_subparsers(dest="action", required=True)
    sessions = dashboard_sub.add_parser("sessions", help="list open sessions, or end them (--end, --end-all)")
    sessions.add_argument("--team", help="one team's sessions (Discord guild / Slack team id / local)")
    sessions.add_argument("--user", help="one person's sessions (their user id)")
    ending = sessions.add_mutually_exclusive_group()
    ending.add_argument("--end", action="store_true", help="end the sessions of --team / --user")
    ending.add_argument("--end-all", action="store_true", help="end every session (everyone signs in again)")

    digests = sub.add_parser("digests", help="list the channels' digests, or post them (run --due, run --now)")
    digests_sub = digests.add_subparsers(dest="action")
    posting = digests_sub.add_parser("run", help="post the digests now due (--due, for cron) or all now (--now)")
    when = posting.add_mutually_exclusive_group(required=True)
    when.add_argument("--due", action="store_true", help="the runs whose time has come (what the bot does each minute)")
    when.add_argument("--now", action="store_true", help="every digest now, since its last run")
    posting.add_argument("--channel", help="with --now: only this channel's digest")

    prompts = sub.add_parser("prompts", help="export or import the team prompt library (JSON)")
    prompts_sub = prompts.add_subparsers(dest="action", required=True)
    export = prompts_sub.add_parser("export", help="print the library as JSON")
    export.add_argument("--team", help="one team (default: every team)")
    load = prompts_sub.add_parser("import", help="add an export file's prompts, versions, runs and ratings")
    load.add_argument("file", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Configuration problems print one message, no traceback."""
    args = build_parser().parse_args(argv)
    # Imported after parsing, so `--help` and usage errors answer without loading the model client,
    # the tokenizer and the platform libraries (about a second on a small machine).
    from bot import admin_cli, app, event_loop
    from bot.logs import configure_logging
    from bot.settings import load_settings
    from storage import StoreUnavailable

    try:
        settings = load_settings()
        # In the console the terminal is the conversation: the log goes to a file, named in its greeting.
        console = args.command == "console" or (
            args.command in (None, "run") and not app.configured_platforms(settings)
        )
        log_file = settings.log_file or (CONSOLE_LOG if console else None)
        configure_logging(
            settings.log_level, settings.secrets(), library_level=settings.library_log_level, file=log_file
        )
        if args.command == "usage":
            return event_loop.run(
                admin_cli.usage(
                    settings, sys.stdout, team=args.team, user=args.user, since=args.since, until=args.until,
                    fmt=args.format,
                )
            )  # fmt: skip
        if args.command == "tool-calls":
            return event_loop.run(
                admin_cli.tool_calls(settings, sys.stdout, team=args.team, since=args.since, fmt=args.format)
            )
        if args.command == "quota":
            return event_loop.run(
                admin_cli.quota(
                    settings,
                    sys.stdout,
                    team=args.team,
                    words=args.words,
                    by=args.by,
                    console_team=None if app.configured_platforms(settings) else app.CONSOLE_TEAM,
                )
            )
        if args.command == "teams":
            return event_loop.run(admin_cli.teams(settings, sys.stdout, names=app.team_names))
        if args.command == "discord-sync":
            return event_loop.run(app.sync_discord(settings, sys.stdout))
        if args.command == "discord-invite":
            return event_loop.run(app.discord_invite(settings, sys.stdout))
        if args.command == "slack-manifest":
            sys.stdout.write(app.slack_manifest(settings, args.url))
            return 0
        if args.command == "migrate-db":
            return event_loop.run(admin_cli.migrate_db(sys.stdout, source=args.source, target=args.target))
        if args.command == "dashboard":
            return event_loop.run(
                admin_cli.dashboard_sessions(
                    settings, sys.stdout, team=args.team, user=args.user, end=args.end, end_all=args.end_all
                )
            )
        if args.command == "digests":
            if args.action == "run":
                if args.channel and not args.now:
                    raise BadCommand("--channel goes with --now (the due runs are every channel's).")
                return event_loop.run(
                    app.run_digests(settings, sys.stdout, due=args.due, channel=args.channel, err=sys.stderr)
                )
            return event_loop.run(admin_cli.digests(settings, sys.stdout))
        if args.command == "prompts":
            if args.action == "export":
                return event_loop.run(admin_cli.prompts_export(settings, sys.stdout, team=args.team))
            return event_loop.run(admin_cli.prompts_import(settings, sys.stdout, path=args.file))
        if args.command is None:
            return event_loop.run(app.run(settings))
        identity = app.ConsoleIdentity(user_id=args.user, channel_id=args.channel, is_admin=args.admin)
        if args.command == "console":
            return event_loop.run(app.run_console(settings, identity, files_dir=args.files_dir))
        return event_loop.run(app.run(settings, identity, files_dir=args.files_dir))
    except (ConfigError, StoreUnavailable) as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except PlatformUnreachable as exc:
        print(exc, file=sys.stderr)
        return EXIT_UNAVAILABLE
    except UserFacingError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
