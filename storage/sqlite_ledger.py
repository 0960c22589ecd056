"""The usage ledger and quota limits on SQLite. Reservations are single statements: exact under
any concurrency, because SQLite takes the write lock before the statement's limit checks read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import aiosqlite

from storage.ledger_records import (
    ALL_USERS,
    TEAM_SUBJECT,
    LimitChange,
    LimitOverride,
    Metric,
    PeriodTotals,
    ReservationRequest,
    Units,
    UsageRow,
)

if TYPE_CHECKING:
    from storage.sqlite.database import SQLiteDatabase

_TOTAL = (
    "COALESCE((SELECT {column} FROM usage_totals WHERE team_id = :team AND scope = '{scope}'"
    " AND subject = {subject} AND period = {period}), 0)"
)
_USER_DAY = {"scope": "user", "subject": ":user", "period": ":day"}
_TEAM_MONTH = {"scope": "team", "subject": "''", "period": ":month"}

_RESERVE = f"""
INSERT INTO usage_ledger (platform, team_id, user_id, channel_id, kind, model, state, cost_nanos,
    input_tokens, cached_tokens, output_tokens, images, audio_ms, user_day, team_month, created_at,
    expires_at, holder)
SELECT :platform, :team, :user, :channel, :kind, :model, 'reserved', :cost,
    :input_tokens, :cached_tokens, :output_tokens, :images, :audio_ms, :day, :month, :now, :expires, :holder
WHERE (:user_usd IS NULL OR {_TOTAL.format(column="cost_nanos", **_USER_DAY)} + :cost <= :user_usd)
  AND (:team_usd IS NULL OR {_TOTAL.format(column="cost_nanos", **_TEAM_MONTH)} + :cost <= :team_usd)
  AND (:user_images IS NULL OR {_TOTAL.format(column="images", **_USER_DAY)} + :images <= :user_images)
  AND (:user_audio IS NULL OR {_TOTAL.format(column="audio_ms", **_USER_DAY)} + :audio_ms <= :user_audio)
RETURNING id
"""


class SQLiteLedger:
    """Reservations, settlements, period totals, admin limits and their audit trail."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def reserve(self, request: ReservationRequest) -> int | None:
        """Insert a reservation unless it would cross a limit: its id, or None when refused."""
        charge, units, limits = request.charge, request.units, request.limits
        rows = await self._db.fetchall(
            _RESERVE,
            {
                "platform": charge.platform,
                "team": charge.team_id,
                "user": charge.user_id,
                "channel": charge.channel_id,
                "kind": charge.kind,
                "model": charge.model,
                "cost": request.cost_nanos,
                "input_tokens": units.input_tokens,
                "cached_tokens": units.cached_tokens,
                "output_tokens": units.output_tokens,
                "images": units.images,
                "audio_ms": units.audio_ms,
                "day": request.user_day,
                "month": request.team_month,
                "now": request.now.isoformat(),
                "expires": request.expires_at.isoformat(),
                "holder": request.holder,
                "user_usd": limits.user_daily_nanos,
                "team_usd": limits.team_monthly_nanos,
                "user_images": limits.user_daily_images,
                "user_audio": limits.user_daily_audio_ms,
            },
        )
        return int(rows[0][0]) if rows else None

    async def settle(self, reservation_id: int, units: Units, cost_nanos: int, now: datetime) -> bool:
        """Record the real cost of a reserved call (even one whose reservation already expired)."""
        rows = await self._db.fetchall(
            "UPDATE usage_ledger SET state = 'settled', cost_nanos = ?, input_tokens = ?, cached_tokens = ?,"
            " output_tokens = ?, images = ?, audio_ms = ?, settled_at = ? WHERE id = ? AND state != 'settled'"
            " RETURNING id",
            (
                cost_nanos,
                units.input_tokens,
                units.cached_tokens,
                units.output_tokens,
                units.images,
                units.audio_ms,
                now.isoformat(),
                reservation_id,
            ),
        )
        return bool(rows)

    async def release(self, reservation_id: int, now: datetime) -> bool:
        """Give a reservation back: the call failed and was not charged."""
        rows = await self._db.fetchall(
            "UPDATE usage_ledger SET state = 'released', cost_nanos = 0, images = 0, audio_ms = 0,"
            " settled_at = ? WHERE id = ? AND state = 'reserved' RETURNING id",
            (now.isoformat(), reservation_id),
        )
        return bool(rows)

    async def release_expired(self, now: datetime) -> int:
        """Release every reservation past its expiry (left by a crash or a hung call)."""
        rows = await self._db.fetchall(
            "UPDATE usage_ledger SET state = 'released', cost_nanos = 0, images = 0, audio_ms = 0,"
            " settled_at = ?1 WHERE state = 'reserved' AND expires_at <= ?1 RETURNING id",
            (now.isoformat(),),
        )
        return len(rows)

    async def release_held_by(self, holders: Sequence[str], now: datetime) -> int:
        """Release every reservation held by the given holders (processes known to be dead)."""
        released = 0
        for holder in holders:
            rows = await self._db.fetchall(
                "UPDATE usage_ledger SET state = 'released', cost_nanos = 0, images = 0, audio_ms = 0,"
                " settled_at = ? WHERE state = 'reserved' AND holder = ? RETURNING id",
                (now.isoformat(), holder),
            )
            released += len(rows)
        return released

    async def reservation_holders(self) -> list[str]:
        """The distinct holders of open reservations."""
        rows = await self._db.fetchall("SELECT DISTINCT holder FROM usage_ledger WHERE state = 'reserved'")
        return [row[0] for row in rows]

    async def totals(self, team_id: str, user_id: str, user_day: str, team_month: str) -> PeriodTotals:
        """Reserved + settled spend for the user's day and the team's month."""
        rows = await self._db.fetchall(
            "SELECT scope, cost_nanos, images, audio_ms FROM usage_totals WHERE team_id = ?1 AND ("
            " (scope = 'user' AND subject = ?2 AND period = ?3) OR (scope = 'team' AND subject = '' AND period = ?4))",
            (team_id, user_id, user_day, team_month),
        )
        user = next((r for r in rows if r[0] == "user"), ("user", 0, 0, 0))
        team = next((r for r in rows if r[0] == "team"), ("team", 0, 0, 0))
        return PeriodTotals(user[1], user[2], user[3], team[1])

    async def limit_overrides(self, team_id: str, user_id: str | None = None) -> list[LimitOverride]:
        """Admin-set limits of the team: all of them, or those that bear on one user."""
        if user_id is None:
            rows = await self._db.fetchall(
                "SELECT subject, metric, value FROM quota_limits WHERE team_id = ? ORDER BY subject, metric",
                (team_id,),
            )
        else:
            rows = await self._db.fetchall(
                "SELECT subject, metric, value FROM quota_limits WHERE team_id = ? AND subject IN (?, ?, ?)",
                (team_id, user_id, ALL_USERS, TEAM_SUBJECT),
            )
        return [LimitOverride(subject, metric, value) for subject, metric, value in rows]

    async def set_limit(
        self, team_id: str, subject: str, metric: Metric, value: int | None, *, changed_by: str, now: datetime
    ) -> LimitOverride | None:
        """Set one limit (None = unlimited) and record the change; returns the previous override."""
        async with self._db.raw_transaction() as db:
            old = await self._override(db, team_id, subject, metric)
            await db.execute(
                "INSERT INTO quota_limits (team_id, subject, metric, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (team_id, subject, metric) DO UPDATE SET value = excluded.value",
                (team_id, subject, metric, value),
            )
            await self._audit(db, team_id, subject, metric, old, LimitOverride(subject, metric, value), changed_by, now)
        return old

    async def clear_limits(self, team_id: str, subject: str, *, changed_by: str, now: datetime) -> int:
        """Remove every override of `subject` (back to the defaults), recording each change."""
        async with self._db.raw_transaction() as db:
            rows = list(
                await db.execute_fetchall(
                    "DELETE FROM quota_limits WHERE team_id = ? AND subject = ? RETURNING subject, metric, value",
                    (team_id, subject),
                )
            )
            for row in rows:
                await self._audit(db, team_id, subject, row[1], LimitOverride(*row), None, changed_by, now)
        return len(rows)

    async def limit_changes(self, team_id: str, limit: int = 20) -> list[LimitChange]:
        """The latest limit changes of a team, newest first."""
        rows = await self._db.fetchall(
            "SELECT changed_at, changed_by, subject, metric, old_value, old_set, new_value, new_set"
            " FROM quota_changes WHERE team_id = ? ORDER BY id DESC LIMIT ?",
            (team_id, limit),
        )
        return [
            LimitChange(datetime.fromisoformat(r[0]), r[1], r[2], r[3], r[4], bool(r[5]), r[6], bool(r[7]))
            for r in rows
        ]

    async def usage(
        self, team_id: str | None, since_day: str, until_day: str | None = None, user_id: str | None = None
    ) -> list[UsageRow]:
        """Spend (settled and still reserved) grouped by user, kind and day (the quota day)."""
        rows = await self._db.fetchall(
            "SELECT user_id, kind, user_day, count(*), sum(cost_nanos), sum(input_tokens), sum(output_tokens),"
            " sum(images), sum(audio_ms) FROM usage_ledger"
            " WHERE state != 'released' AND user_day >= :since AND (:until IS NULL OR user_day <= :until)"
            " AND (:team IS NULL OR team_id = :team) AND (:user IS NULL OR user_id = :user)"
            " GROUP BY user_id, kind, user_day ORDER BY user_day, user_id, kind",
            {"since": since_day, "until": until_day, "team": team_id, "user": user_id},
        )
        return [UsageRow(*row) for row in rows]

    async def ledger_rows(self, team_id: str) -> list[tuple[str, str, int, str]]:
        """(kind, model, cost_nanos, state) of every ledger row of a team, oldest first (for audits and tests)."""
        rows = await self._db.fetchall(
            "SELECT kind, model, cost_nanos, state FROM usage_ledger WHERE team_id = ? ORDER BY id", (team_id,)
        )
        return [tuple(row) for row in rows]

    @staticmethod
    async def _override(db: aiosqlite.Connection, team_id: str, subject: str, metric: str) -> LimitOverride | None:
        rows = list(
            await db.execute_fetchall(
                "SELECT value FROM quota_limits WHERE team_id = ? AND subject = ? AND metric = ?",
                (team_id, subject, metric),
            )
        )
        return LimitOverride(subject, metric, rows[0][0]) if rows else None  # type: ignore[arg-type]

    @staticmethod
    async def _audit(
        db: aiosqlite.Connection,
        team_id: str,
        subject: str,
        metric: str,
        old: LimitOverride | None,
        new: LimitOverride | None,
        changed_by: str,
        now: datetime,
    ) -> None:
        await db.execute(
            "INSERT INTO quota_changes (team_id, subject, metric, old_value, old_set, new_value, new_set,"
            " changed_by, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                team_id,
                subject,
                metric,
                old.value if old else None,
                old is not None,
                new.value if new else None,
                new is not None,
                changed_by,
                now.isoformat(),
            ),
        )
