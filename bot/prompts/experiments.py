"""The prompt library's operations: save, show, list, diff, run, compare, rate, history, export, delete."""

from __future__ import annotations

import difflib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bot.billing.budget import charge_for
from bot.billing.metering import Cell, Completion, MeteredChat
from bot.billing.money import format_usd
from bot.billing.prices import NoPrice, PriceTable
from bot.chat.replies import stream_reply
from bot.clock import Clock
from bot.errors import BadCommand, ModelError, NotAllowed
from bot.messages import IncomingMessage
from bot.prompts.template import fill, variables
from bot.providers.llm import PromptMessage
from bot.responder import Responder
from bot.settings import Settings
from bot.wording import count
from storage import Store
from storage.prompt_records import PromptRun, PromptVersion

NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_REF = re.compile(r"(?P<name>[^@\s]+)(?:@v?(?P<version>\d+))?")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`name`, `name@v2` or `name@2` -> (name, version or None for the latest)."""
    match = _REF.fullmatch(ref)
    if match is None:
        raise BadCommand(f"{ref!r} is not a prompt name (name, name@v2).")
    version = match.group("version")
    return match.group("name").lower(), int(version) if version else None


MAX_VERSION_DIGITS = 9  # a billion versions of one prompt is beyond any team


def parse_version(word: str) -> int:
    """`v2` or `2` -> 2."""
    text = word.lower().removeprefix("v")
    # ASCII digits only ("²".isdigit() is true, int("²") fails), and few enough for a database integer.
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_VERSION_DIGITS) or int(text) < 1:
        raise BadCommand(f"{word!r} is not a version (v1, v2, …).")
    return int(text)


def parse_temperature(text: str) -> float:
    """A temperature between 0 and 2."""
    try:
        value = float(text)
    except ValueError:
        raise BadCommand(f"temperature={text} is not a number between 0 and 2.") from None
    if not 0 <= value <= 2:
        raise BadCommand(f"temperature={text} is outside 0–2.")
    return value


class PromptExperiments:
    """A team's shared prompts, run through the same metered model calls as chat."""

    def __init__(
        self, *, settings: Settings, store: Store, chat: MeteredChat, prices: PriceTable, clock: Clock
    ) -> None:
        self._settings = settings
        self._store = store
        self._library = store.prompts
        self._chat = chat
        self._prices = prices
        self._clock = clock

    def check_model(self, model: str) -> str:
        """A model users may pick: on the allow-list and priced."""
        if model not in self._settings.allowed_models:
            allowed = ", ".join(self._settings.allowed_models)
            raise BadCommand(f"Model {model!r} is not allowed here. Allowed: {allowed} (ALLOWED_CHAT_MODELS).")
        try:
            self._prices.chat(model)
        except NoPrice as exc:
            raise BadCommand(exc.message) from None
        return model

    async def save(
        self, message: IncomingMessage, name: str, template: str, options: Mapping[str, str]
    ) -> PromptVersion:
        """Save `template` as the next version of `name`."""
        name = name.lower()
        if not NAME.fullmatch(name):
            raise BadCommand(f"{name!r} is not a prompt name: use letters, digits, - _ . (up to 64).")
        if not template.strip():
            raise BadCommand("The prompt text is empty.\nUsage: /prompt save <name> [system=…] [model=…] <text>")
        unknown = set(options) - {"system", "model", "temperature"}
        if unknown:
            raise BadCommand(f"Unknown option(s) {', '.join(sorted(unknown))}: use system=, model=, temperature=.")
        model = self.check_model(options["model"]) if "model" in options else None
        temperature = parse_temperature(options["temperature"]) if "temperature" in options else None
        return await self._library.save_version(
            message.team_id, name, template.strip(), system_prompt=options.get("system"), model=model,
            temperature=temperature, author_id=message.author.id, now=self._clock(),
        )  # fmt: skip

    async def get(self, team_id: str, name: str, version: int | None = None) -> PromptVersion:
        """A version, or a clear error naming what exists."""
        found = await self._library.version(team_id, name, version)
        if found is not None:
            return found
        if version is not None and await self._library.version(team_id, name) is not None:
            latest = await self._library.version(team_id, name)
            assert latest is not None
            raise BadCommand(f"{name} has no v{version}; the latest is v{latest.version}.")
        raise BadCommand(f"No prompt called {name!r}. See /prompt list.")

    async def describe(self, team_id: str, name: str, version: int | None) -> str:
        """What /prompt show prints."""
        v = await self.get(team_id, name, version)
        lines = [f"{v.name} v{v.version} by {v.author_id}, {v.created_at:%Y-%m-%d %H:%M}"]
        names = variables(v.template)
        lines.append(f"Variables: {', '.join(names) if names else 'none'}")
        if v.system_prompt:
            lines.append(f"System: {v.system_prompt}")
        if v.model or v.temperature is not None:
            lines.append(f"Model: {v.model or 'default'}; temperature: {_temp(v.temperature)}")
        lines.extend(["", v.template])
        return "\n".join(lines)

    async def listing(self, team_id: str, contains: str | None) -> str:
        """What /prompt list prints."""
        prompts = await self._library.summaries(team_id, contains)
        if not prompts:
            return (
                "No saved prompts yet. Save one with /prompt save <name> <text>."
                if not contains
                else (f"No prompt names contain {contains!r}.")
            )
        return "\n".join(
            f"{p.name} (v{p.latest_version}, by {p.created_by}, {count(p.runs, 'run')}, "
            f"updated {p.updated_at:%Y-%m-%d})"
            for p in prompts
        )

    async def diff(self, team_id: str, name: str, a: int, b: int) -> str:
        """A unified diff of two versions: text, system prompt, model and temperature."""
        first, second = await self.get(team_id, name, a), await self.get(team_id, name, b)

        def text(v: PromptVersion) -> list[str]:
            system = (v.system_prompt or "").splitlines() or ["(the default)"]
            return [
                f"model: {v.model or '(the channel’s)'}",
                f"temperature: {_temp(v.temperature)}",
                f"system: {system[0]}",
                *system[1:],
                "text:",
                *v.template.splitlines(),
            ]

        lines = list(difflib.unified_diff(text(first), text(second), f"{name} v{a}", f"{name} v{b}", lineterm=""))
        if lines:
            return "\n".join(lines)
        return f"{name} v{a} and v{b} are the same: text, system prompt, model and temperature."

    async def persona(self, team_id: str, ref: str, values: Mapping[str, str]) -> tuple[str, str]:
        """The system text a channel's persona takes from a saved prompt, and where it came from.

        A prompt's own system text is its persona; a prompt without one lends its text. Either way
        its {variables} are filled from `values`: a persona never carries a raw {placeholder}.
        """
        name, number = parse_ref(ref)
        version = await self.get(team_id, name, number)
        source = f"{version.name}@v{version.version}"
        persona = version.system_prompt if version.system_prompt else version.template
        expected = variables(persona)
        missing = [v for v in expected if v not in values]
        unknown = [v for v in values if v not in expected]
        if missing or unknown:
            wanted = " ".join(f"{v}=…" for v in expected)
            what = "system text" if version.system_prompt else "text"
            problem = (
                f"fill its {', '.join('{' + v + '}' for v in missing)}" if missing else
                f"it has no {', '.join(unknown)}"
            )  # fmt: skip
            example = f"/persona use {ref} {wanted}" if expected else f"/persona use {ref}"
            raise BadCommand(f"{source}'s {what} cannot be a persona as it is: {problem}. Try: {example}")
        return fill(persona, values), source

    async def run(self, message: IncomingMessage, responder: Responder, ref: str, values: Mapping[str, str]) -> str:
        """Fill, run and stream one version; record the run; returns the footer line."""
        name, number = parse_ref(ref)
        version = await self.get(message.team_id, name, number)
        params = dict(values)
        model = (
            self.check_model(params.pop("model")) if "model" in params else await self._default_model(message, version)
        )
        temperature = parse_temperature(params.pop("temperature")) if "temperature" in params else version.temperature
        cell = self._cell(version, params, model, temperature)
        try:
            completion = await stream_reply(self._chat, cell, charge_for(message, "chat", cell.model), responder)
        except ModelError as exc:
            await self._record(message, version, params, cell, None, exc)
            raise
        run_id = await self._record(message, version, params, cell, completion, None)
        return (
            f"Run #{run_id} · {version.name} v{version.version} · {model} · {completion.usage.prompt_tokens}+"
            f"{completion.usage.completion_tokens} tokens · {format_usd(completion.cost_nanos)} · "
            f"{completion.latency_ms / 1000:.1f} s — rate it: /prompt rate {run_id} <1-5>"
        )

    async def compare(self, message: IncomingMessage, name: str, values: Mapping[str, str]) -> str:
        """Run the grid versions × models × temperatures under one reservation; a side-by-side report."""
        params = dict(values)
        versions_arg = params.pop("versions", None)
        models_arg = params.pop("models", None)
        temps_arg = params.pop("temperatures", None)
        latest = await self.get(message.team_id, name.lower())
        numbers = [parse_version(v) for v in versions_arg.split(",")] if versions_arg else [latest.version]
        versions = [await self.get(message.team_id, latest.name, n) for n in numbers]
        models: list[str | None] = (
            [self.check_model(m.strip()) for m in models_arg.split(",")] if models_arg else [None]
        )
        temps: list[float | None] = [parse_temperature(t) for t in temps_arg.split(",")] if temps_arg else [None]
        size = len(versions) * len(models) * len(temps)
        if size > self._settings.prompt_compare_max:
            raise BadCommand(
                f"That grid has {size} cells; the most is {self._settings.prompt_compare_max} (PROMPT_COMPARE_MAX)."
            )
        cells = []
        for version in versions:
            for model in models:
                for temperature in temps:
                    chosen = model or await self._default_model(message, version)
                    t = temperature if temperature is not None else version.temperature
                    cells.append((version, self._cell(version, params, chosen, t)))
        models_run = "+".join(dict.fromkeys(cell.model for _, cell in cells))
        outcomes = await self._chat.grid([cell for _, cell in cells], charge_for(message, "chat", models_run))
        sections = []
        for (version, cell), outcome in zip(cells, outcomes, strict=True):
            if isinstance(outcome, Completion):
                run_id = await self._record(message, version, params, cell, outcome, None)
                head = (
                    f"#{run_id} · v{version.version} · {cell.model} · t={_temp(cell.temperature)} · "
                    f"{outcome.usage.prompt_tokens}+{outcome.usage.completion_tokens} tokens · "
                    f"{format_usd(outcome.cost_nanos)} · {outcome.latency_ms / 1000:.1f} s"
                )
                sections.append(f"── {head}\n{outcome.text}")
            else:
                await self._record(message, version, params, cell, None, outcome)
                sections.append(
                    f"── v{version.version} · {cell.model} · t={_temp(cell.temperature)} · failed\n{outcome.message}"
                )
        return "\n\n".join(sections)

    async def rate(self, message: IncomingMessage, run_word: str, rating_word: str, comment: str) -> str:
        """Record a 1–5 rating of a run."""
        run_id = int(run_word.lstrip("#")) if run_word.lstrip("#").isdigit() else None
        if run_id is None:
            raise BadCommand(f"{run_word!r} is not a run number (see the run's footer, e.g. #12).")
        if rating_word not in {"1", "2", "3", "4", "5"}:
            raise BadCommand(f"Rate from 1 to 5, not {rating_word!r}.")
        if not await self._library.rate(
            message.team_id, run_id, message.author.id, int(rating_word), comment, self._clock()
        ):
            raise BadCommand(f"No run #{run_id} in this team.")
        return f"Rated run #{run_id}: {rating_word}/5."

    async def history(self, team_id: str, name: str) -> str:
        """Per version: runs, average rating, cost and latency, best first."""
        await self.get(team_id, name)
        stats = await self._library.stats(team_id, name)
        ranked = sorted(stats, key=lambda s: (s.avg_rating is None, -(s.avg_rating or 0), s.avg_cost_nanos))
        lines = [f"Versions of {name}, best first:"]
        for s in ranked:
            rating = f"{s.avg_rating:.1f}/5 ({count(s.rated, 'rating')})" if s.avg_rating is not None else "not rated"
            lines.append(
                f"  v{s.version}: {rating} · {count(s.runs, 'run')} · avg {format_usd(round(s.avg_cost_nanos))} · "
                f"avg {s.avg_latency_ms / 1000:.1f} s"
            )
        return "\n".join(lines)

    async def delete(self, message: IncomingMessage, name: str) -> str:
        """Delete a prompt (its author or an admin); runs stay readable in exports."""
        creator = await self._library.creator(message.team_id, name)
        if creator is None:
            raise BadCommand(f"No prompt called {name!r}.")
        if creator != message.author.id and not message.author.is_admin:
            raise NotAllowed(f"Only {creator} (its author) or an admin can delete {name}.")
        await self._library.delete(message.team_id, name, by=message.author.id, now=self._clock())
        return f"Deleted {name}. Its runs stay in the history and in exports."

    async def export_json(self, team_id: str | None, name: str | None = None) -> bytes:
        """The library (or one prompt) as JSON: prompts, versions, runs and ratings."""
        records = await self._library.export(team_id)
        if name is not None:
            records = [r for r in records if r.name == name]
            if not records:
                raise BadCommand(f"No prompt called {name!r}.")
        return json.dumps(export_document(records), indent=2, ensure_ascii=False).encode()

    async def _default_model(self, message: IncomingMessage, version: PromptVersion) -> str:
        if version.model:
            return version.model
        channel = await self._store.channel_settings(message.platform, message.team_id, message.channel_id)
        return channel.model or self._settings.chat_model

    def _cell(self, version: PromptVersion, values: Mapping[str, str], model: str, temperature: float | None) -> Cell:
        system = version.system_prompt if version.system_prompt is not None else self._settings.system_prompt
        prompt = [PromptMessage("system", system)] if system else []
        prompt.append(PromptMessage("user", fill(version.template, values)))
        return Cell(prompt, self._chat.prompt_tokens(prompt), model, temperature)

    async def _record(
        self,
        message: IncomingMessage,
        version: PromptVersion,
        values: Mapping[str, str],
        cell: Cell,
        completion: Completion | None,
        error: ModelError | None,
    ) -> int:
        return await self._library.add_run(
            PromptRun(
                uid=uuid.uuid4().hex, version_id=version.id, team_id=message.team_id, user_id=message.author.id,
                inputs=dict(values), model=cell.model, temperature=cell.temperature,
                output=completion.text if completion else "", error=error.message if error else None,
                input_tokens=completion.usage.prompt_tokens if completion else 0,
                output_tokens=completion.usage.completion_tokens if completion else 0,
                cost_nanos=completion.cost_nanos if completion else 0,
                latency_ms=completion.latency_ms if completion else 0, created_at=self._clock(),
            )
        )  # fmt: skip


def _temp(value: float | None) -> str:
    return "default" if value is None else f"{value:g}"


EXPORT_FORMAT = "teambot-prompts/1"


def export_document(records: list[Any]) -> dict[str, Any]:
    """The export JSON: every field of every record, datetimes as ISO strings."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    prompts = []
    for record in records:
        data = asdict(record)
        data["versions"] = [
            {**plain(asdict(version)), "runs": [plain(asdict(run)) for run in runs]}
            for version, runs in record.versions
        ]
        prompts.append(plain(data))
    return {"format": EXPORT_FORMAT, "prompts": prompts}
