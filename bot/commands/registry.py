"""The command table: each command's usage, help, who may run it, and its handler."""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bot.errors import BadCommand, NotAllowed
from bot.messages import Command, IncomingMessage
from bot.private_exchange import PrivateExchange
from bot.responder import Responder

if TYPE_CHECKING:
    from bot.commands.services import CommandServices


@dataclass(frozen=True)
class CommandContext:
    """Everything a command handler gets: the services commands use, the message, its command and the responder."""

    services: CommandServices
    message: IncomingMessage
    command: Command
    responder: Responder


Handler = Callable[[CommandContext], Awaitable[None]]
# A subcommand's handler gets the words after its own (`/prompt show p v2` -> ("p", "v2")).
SubHandler = Callable[[CommandContext, tuple[str, ...]], Awaitable[None]]
ANY_NUMBER = range(0, sys.maxsize)


def exactly(n: int) -> range:
    """A subcommand that takes `n` words."""
    return range(n, n + 1)


def at_most(n: int) -> range:
    """A subcommand that takes up to `n` words."""
    return range(0, n + 1)


def at_least(n: int) -> range:
    """A subcommand that takes `n` words or more."""
    return range(n, ANY_NUMBER.stop)


@dataclass(frozen=True)
class Subcommand:
    """One word of a command that has several (`/prompt save …`): its handler and how it is used.

    `usage` is what follows the word in usage lines; `takes` how many words may follow it (fewer or more
    is a usage error, said before the handler runs); `described` names it in "takes …" when its word
    alone would not ("nothing (your own)").
    """

    handler: SubHandler
    usage: str = ""
    takes: range = ANY_NUMBER
    described: str = ""


def admins_only(ctx: CommandContext, refused: str) -> NotAllowed:
    """A NotAllowed that says what was refused and how one becomes an admin on the asker's platform."""
    how = ctx.services.platforms.becoming_admin(ctx.message.platform)
    return NotAllowed(f"{refused} {how}" if how else refused)


@dataclass(frozen=True)
class CommandSpec:
    """One command: `usage` is shown on wrong arguments, `summary` in /help.

    `private`: the whole exchange is for the asker alone (ephemeral or a DM, including the platform's own
    "thinking…" placeholder where it has one), e.g. budgets, search results, /forget: every answer of the
    handler goes out private (bot/private_exchange.py), whatever the handler passes. `public_word`, when
    the asker says it among the arguments (`/catchup public`), makes a private command's exchange public.
    """

    name: str
    usage: str
    summary: str
    handler: Handler | None  # None: the first word picks one of `subcommands`
    admin_only: bool = False
    private: bool = False
    subcommands: Mapping[str, Subcommand] = field(default_factory=dict)
    default: str | None = None  # the subcommand run when none is named ("" may name one in the table)
    public_word: str = ""

    def is_private(self, command: Command) -> bool:
        """Whether this run of the command answers the asker alone."""
        said_public = bool(self.public_word) and self.public_word in (a.lower() for a in command.args)
        return self.private and not said_public

    @classmethod
    def table(
        cls,
        name: str,
        summary: str,
        subcommands: Mapping[str, Subcommand],
        *,
        default: str | None = None,
        usage: str | None = None,
        admin_only: bool = False,
        private: bool = False,
    ) -> CommandSpec:
        """A command dispatched by its first word; its usage line is written from the table unless given."""
        written = " | ".join(f"{word} {sub.usage}".rstrip() for word, sub in subcommands.items() if word)
        return cls(name, usage or f"/{name} {written}", summary, None, admin_only, private, dict(subcommands), default)

    def bad_usage(self, problem: str) -> BadCommand:
        """A BadCommand that says what is wrong and shows the usage line."""
        return BadCommand(f"{problem}\nUsage: {self.usage}")

    async def run(self, ctx: CommandContext) -> None:
        """Run the handler, or the subcommand the first word names with the words after it."""
        if self.handler is not None:
            await self.handler(ctx)
            return
        words = ctx.command.args
        word = words[0].lower() if words else self.default
        sub = self.subcommands.get(word) if word is not None else None
        if sub is None or word is None:
            choices = [s.described or w for w, s in self.subcommands.items()]
            listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
            said = f", not {words[0]!r}" if words else ""
            raise self.bad_usage(f"/{self.name} takes {listed}{said}.")
        rest = words[1:]
        if len(rest) not in sub.takes:
            takes = sub.usage or "nothing after it"
            raise self.bad_usage(f"/{self.name} {word} takes {takes}.")
        await sub.handler(ctx, rest)


class CommandRegistry:
    """Looks commands up by name and runs them with their permission check.

    `prefix` (COMMAND_PREFIX) goes before every name people type and platforms register (`tb-` gives
    `/tb-ask`), where other apps in a workspace already use the plain names; the engine's own names
    stay plain, and a typed name is found with or without the prefix.
    """

    def __init__(self, specs: Iterable[CommandSpec] = (), *, prefix: str = "") -> None:
        self.prefix = prefix
        self._specs: dict[str, CommandSpec] = {}
        for spec in specs:
            self.add(spec)

    def public_name(self, name: str) -> str:
        """The name people type and the platforms register, without the slash (`tb-ask`)."""
        return f"{self.prefix}{name}"

    def usage(self, spec: CommandSpec) -> str:
        """The command's usage line, written with its public name."""
        if not self.prefix:
            return spec.usage
        return re.sub(rf"(?<![\w/-])/{re.escape(spec.name)}(?![\w-])", f"/{self.public_name(spec.name)}", spec.usage)

    def add(self, spec: CommandSpec) -> None:
        """Register a command; names are unique."""
        if spec.name in self._specs:
            raise ValueError(f"command /{spec.name} registered twice")
        self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def get(self, name: str) -> CommandSpec | None:
        """The command called `name` (its public name, or the plain one), if any."""
        if self.prefix and name.startswith(self.prefix):
            return self._specs.get(name[len(self.prefix) :]) or self._specs.get(name)
        return self._specs.get(name)

    async def run(self, ctx: CommandContext) -> None:
        """Run the command, refusing unknown names and non-admins on admin-only commands."""
        spec = self.get(ctx.command.name)
        if spec is None:
            known = ", ".join(f"/{self.public_name(name)}" for name in sorted(self._specs))
            raise BadCommand(
                f"Unknown command /{ctx.command.name}. Commands: {known}. Try /{self.public_name('help')}."
            )
        if spec.admin_only and not ctx.message.author.is_admin:
            raise admins_only(ctx, f"/{self.public_name(spec.name)} is for admins only.")
        if spec.is_private(
            ctx.command
        ):  # the one place that makes a command's answers private (see bot/private_exchange.py)
            ctx = replace(ctx, responder=PrivateExchange(ctx.responder, self.public_name(spec.name)))
        await spec.run(ctx)
