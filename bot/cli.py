"""`python -m bot`: run the bot, or the console adapter with options."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from adapters.console_adapter import ConsoleIdentity
from bot import app
from bot.errors import ConfigError
from bot.logs import configure_logging
from bot.settings import load_settings
from storage import StoreUnavailable

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="teambot: a team GPT bot.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="start every configured adapter (the console when no platform is set up)")
    console = sub.add_parser("console", help="chat in the terminal; lines piped on stdin are handled in order")
    console.add_argument("--user", default="local-user", help="user id to speak as (default: local-user)")
    console.add_argument("--channel", default="console", help="channel id; each channel is a conversation")
    console.add_argument("--admin", action="store_true", help="speak as an admin (admin-only commands)")
    console.add_argument("--files-dir", type=Path, default=Path("console-files"), help="where sent files go")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Configuration problems print one message, no traceback."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.secrets())
        if args.command == "console":
            identity = ConsoleIdentity(user_id=args.user, channel_id=args.channel, is_admin=args.admin)
            return asyncio.run(app.run_console(settings, identity, files_dir=args.files_dir))
        return asyncio.run(app.run(settings))
    except (ConfigError, StoreUnavailable) as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
