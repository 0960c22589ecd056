"""`python -m bot usage`, `quota`, `tool-calls` and the rest: the bot's records, for operators."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from bot.billing.budget import Budget
from bot.billing.money import NANOS_PER_USD, format_usd
from bot.billing.quota_admin import QuotaAdmin
from bot.clock import utc_now
from bot.errors import BadCommand
from bot.prompts.exchange import parse_export
from bot.prompts.experiments import export_document
from bot.settings import Settings
from bot.wording import count, tally
from storage import CopyMismatch, ImportConflict, Store, copy_sqlite_to_postgres, open_store
from storage.ledger_records import UsageRow


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Store]:
    """The bot's store, for one CLI command."""
    store = await open_store(settings.database_url, busy_timeout_ms=settings.database_busy_timeout_ms)
    try:
        yield store
    finally:
        await store.close()


# estimated_usd: of cost_usd, calls cut by a crash after they were sent, charged their worst case.
COLUMNS = (
    "day", "platform", "team_id", "user_id", "kind", "calls", "cost_usd", "input_tokens", "output_tokens", "images",
    "audio_minutes", "searches", "estimated_usd",
)  # fmt: skip


async def usage(
    settings: Settings,
    out: TextIO,
    *,
    team: str | None,
    user: str | None,
    since: date | None,
    until: date | None,
    fmt: str,
) -> int:
    """Print spend grouped by day, user and kind (settled and still-reserved calls)."""
    async with opened(settings) as store:
        budget = Budget(store.ledger, settings, utc_now)
        first = since or date.fromisoformat(f"{budget.periods().month}-01")
        rows = await store.ledger.usage(team, first.isoformat(), until.isoformat() if until else None, user)
    out.write(render(rows, fmt))
    return 0


def as_csv(records: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """Records as CSV with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def as_table(records: Sequence[Mapping[str, object]], columns: Sequence[str]) -> list[str]:
    """Records as the lines of an aligned table, a header first."""
    table = [list(columns)] + [["" if record[c] is None else str(record[c]) for c in columns] for record in records]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]


def render(rows: list[UsageRow], fmt: str) -> str:
    """Rows as an aligned table, CSV or JSON (costs in USD with nano-dollar precision)."""
    records = [
        {
            "day": r.day,
            "platform": r.platform,
            "team_id": r.team_id,
            "user_id": r.user_id,
            "kind": r.kind,
            "calls": r.calls,
            "cost_usd": f"{r.cost_nanos / NANOS_PER_USD:.9f}",
            "estimated_usd": f"{r.estimated_nanos / NANOS_PER_USD:.9f}",
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "images": r.images,
            "audio_minutes": round(r.audio_ms / 60_000, 3),
            "searches": r.searches,
        }
        for r in rows
    ]
    if fmt == "json":
        return json.dumps({"rows": records, "total_usd": f"{sum(r.cost_nanos for r in rows) / NANOS_PER_USD:.9f}"},
                          indent=2) + "\n"  # fmt: skip
    if fmt == "csv":
        return as_csv(records, COLUMNS)
    lines = as_table(records, COLUMNS)
    lines.append(f"total {format_usd(sum(r.cost_nanos for r in rows))} in {count(sum(r.calls for r in rows), 'call')}")
    estimated = sum(r.estimated_nanos for r in rows)
    if estimated:
        lines.append(f"of which {format_usd(estimated)} estimated: calls cut by a crash, charged their worst case")
    return "\n".join(lines) + "\n"


async def quota(
    settings: Settings,
    out: TextIO,
    *,
    team: str | None,
    words: list[str],
    by: str | None,
    console_team: str | None,
) -> int:
    """`show`, `set …` or `reset …` on a team's limits, recorded as changed by the operator.

    Without `team`: the database's only team; with several, a list to pick from; with none, the
    console's (`console_team`, given when no platform is set up).
    """
    async with opened(settings) as store:
        team = team or await _only_team(store, console_team)
        admin = QuotaAdmin(Budget(store.ledger, settings, utc_now), settings)
        if not words or words == ["show"]:
            text = f"[team {team}]\n" + await admin.show(team)
        else:
            text = f"[team {team}] " + await admin.apply(team, words, f"cli:{by or getpass.getuser()}", utc_now())
    out.write(text + "\n")
    return 0


async def _only_team(store: Store, console_team: str | None) -> str:
    """The team `quota` means without --team: the database's only one; with several, ask which."""
    seen = await store.teams()
    if len(seen) == 1:
        return seen[0].team_id
    if seen:
        listed = "\n".join(f"  --team {t.team_id}  ({t.platform}, last active {t.last_active[:10]})" for t in seen)
        raise BadCommand(
            f"This database has {count(len(seen), 'team')}; say which with --team "
            f"(python -m bot teams shows their names):\n{listed}"
        )
    if console_team is not None:
        return console_team
    raise BadCommand(
        "No team has used the bot yet, so give one with --team: the Slack team id (T…) or the Discord "
        "server id (python -m bot teams lists them once the bot has been used there)."
    )


async def teams(
    settings: Settings, out: TextIO, *, names: Callable[[Settings], Awaitable[Mapping[tuple[str, str], str]]]
) -> int:
    """Every team the database has seen, with its name (asked of its platform), activity and this month's spend."""
    async with opened(settings) as store:
        seen = await store.teams()
        month = Budget(store.ledger, settings, utc_now).periods().month
        rows = await store.ledger.usage(None, f"{month}-01")
    if not seen:
        out.write("No team has used the bot yet.\n")
        return 0
    known = await names(settings)
    spent: dict[tuple[str, str], int] = {}
    for row in rows:
        spent[(row.platform, row.team_id)] = spent.get((row.platform, row.team_id), 0) + row.cost_nanos
    table = [["platform", "team_id", "name", "conversations", "calls", f"spent in {month}", "last active"]]
    for t in seen:
        key = (t.platform, t.team_id)
        name = known.get(key, "?")
        table.append([t.platform, t.team_id, name, str(t.conversations), str(t.calls), format_usd(spent.get(key, 0)),
                      t.last_active[:16].replace("T", " ")])  # fmt: skip
    lines = aligned(table)
    if any(known.get((t.platform, t.team_id)) is None for t in seen):
        lines.append("? = the platform was not asked (its token is not set) or did not answer; see the log.")
    out.write("\n".join(lines) + "\n")
    return 0


def aligned(table: list[list[str]]) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]


async def dashboard_sessions(
    settings: Settings, out: TextIO, *, team: str | None, user: str | None, end: bool, end_all: bool
) -> int:
    """List the open dashboard sessions (of a team, of a person), or end them: `end` those selected,
    `end_all` everyone's. Unused sign-in links of the same people stop working with them."""
    if end and not (team or user):
        raise BadCommand("--end ends the sessions of a --team or a --user; to end every session, use --end-all.")
    if end_all and (team or user):
        raise BadCommand("--end-all ends every session; to end some, use --end with --team or --user.")
    async with opened(settings) as store:
        if end or end_all:
            sessions, links = await store.signins.end_sessions(team or "", user or "")
            out.write(f"Ended {count(sessions, 'session')} and voided {count(links, 'unused link')}.\n")
            return 0
        listed = await store.signins.sessions(utc_now(), team or "", user or "")
    if not listed:
        out.write("No dashboard session is open.\n")
        return 0
    table = [["platform", "team_id", "user_id", "name", "role at sign-in", "signed in (UTC)", "expires (UTC)"]]
    for session in listed:
        grant = session.grant
        table.append([grant.platform, grant.team_id, grant.user_id, grant.display_name,
                      "admin" if grant.is_admin else "member", f"{session.created_at:%Y-%m-%d %H:%M}",
                      f"{session.expires_at:%Y-%m-%d %H:%M}"])  # fmt: skip
    lines = aligned(table)
    lines.append("Roles are checked with the platform on every request; the role at sign-in is only a record.")
    out.write("\n".join(lines) + "\n")
    return 0


async def prompts_export(settings: Settings, out: TextIO, *, team: str | None) -> int:
    """Print the prompt library (one team's or every team's) as JSON."""
    async with opened(settings) as store:
        records = await store.prompts.export(team)
    out.write(json.dumps(export_document(records), indent=2, ensure_ascii=False) + "\n")
    return 0


async def prompts_import(settings: Settings, out: TextIO, *, path: Path) -> int:
    """Import an export file; idempotent (what exists is skipped), validated, all or nothing."""
    try:
        document = json.loads(await asyncio.to_thread(path.read_text, "utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadCommand(f"Cannot read {path}: {exc}") from None
    records = parse_export(document)
    async with opened(settings) as store:
        try:
            added = await store.prompts.import_(records)
        except ImportConflict as exc:
            raise BadCommand(f"Nothing imported: {exc}.") from None
    out.write(f"Imported {tally(added)}.\n")
    return 0


async def migrate_db(out: TextIO, *, source: str, target: str) -> int:
    """Copy SQLite into an empty PostgreSQL database and print the checked counts."""
    if not source.startswith("sqlite:///") or not target.startswith(("postgresql://", "postgres://")):
        raise BadCommand(
            "Give the source and the target: "
            "migrate-db --from sqlite:///path/to/teambot.sqlite3 --to postgresql://user@host:5432/dbname"
        )
    try:
        copied = await copy_sqlite_to_postgres(source, target)
    except CopyMismatch as exc:
        raise BadCommand(f"The copy does not match its source, so it was rolled back: {exc}") from None
    for table, rows in copied.items():
        out.write(f"{table}: {rows}\n")
    out.write("All counts match.\n")
    return 0


TOOL_CALL_COLUMNS = (
    "called_at", "platform", "team_id", "channel_id", "user_id", "server", "tool", "arguments", "approved_by",
    "result_chars", "duration_ms", "error",
)  # fmt: skip


async def tool_calls(settings: Settings, out: TextIO, *, team: str | None, since: date | None, fmt: str) -> int:
    """Print the audit of MCP tool calls, oldest first."""
    start = datetime(since.year, since.month, since.day, tzinfo=UTC) if since is not None else None
    async with opened(settings) as store:
        calls = await store.tool_servers.tool_calls(team, start)
    records = [asdict(call) | {"called_at": call.called_at.isoformat(timespec="seconds")} for call in calls]
    if fmt == "json":
        out.write(json.dumps({"calls": records}, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        out.write(as_csv(records, TOOL_CALL_COLUMNS))
    else:
        out.write("\n".join([*as_table(records, TOOL_CALL_COLUMNS), count(len(records), "call")]) + "\n")
    return 0


async def digests(settings: Settings, out: TextIO) -> int:
    """List every channel's digest schedule: where, when, who set it, its last run (and its failed posts)."""
    from zoneinfo import ZoneInfo

    from bot.digests import describe, describe_failures

    tz = ZoneInfo(settings.quota_timezone)
    async with opened(settings) as store:
        schedules = await store.digests.schedules()
    if not schedules:
        out.write("No channel has a digest (an admin sets one with /digest daily 09:00).\n")
    for s in schedules:
        last = f"{s.last_run.astimezone(tz):%Y-%m-%d %H:%M}" if s.last_run else "not yet"
        out.write(
            f"{s.key.platform} {s.key.team_id} {s.key.channel_id}: {describe(s)} ({settings.quota_timezone}),"
            f" set by {s.set_by}, last run {last}{describe_failures(s, tz)}\n"
        )
    return 0
