"""The Store contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.billing.budget import Budget, QuotaExceeded
from bot.billing.money import usd_to_nanos
from bot.settings import load_settings
from storage import ChannelSettings, ConversationKey, ModelUsage, NewMessage, Store, StoredImage
from storage.ledger_records import (
    Charge,
    InFlightLease,
    LimitOverride,
    Limits,
    Metric,
    PeriodTotals,
    Recovered,
    ReservationRequest,
    Settlement,
    Units,
    effective,
    fits,
)
from storage.memory_records import MessageVector, VectorScope
from storage.prompt_records import PromptRun
from storage.turn_records import Question, TurnOpening
from tests.harness.spending import spend_at_once, team_month_rows
from tests.harness.store_contract import NOW
from tests.harness.stores import assert_totals_kept, fresh_database, opened

KEY = ConversationKey("slack", "T1", "C1", "171.1")


def user(text: str, tokens: int, author: str = "u1") -> NewMessage:
    return NewMessage(role="user", content=text, tokens=tokens, created_at=NOW, author_id=author)


async def test_reopening_migrates_nothing_and_keeps_data(url: str) -> None:
    async with opened(url) as store:
        conv = await store.active_conversation(KEY, NOW)
        await store.add_message(conv.id, user("hello", 5))
    async with opened(url) as store:
        again = await store.active_conversation(KEY, NOW)
        assert again.id == conv.id and [m.content for m in await store.messages(again.id)] == ["hello"]


async def test_conversations_window_and_usage(store: Store) -> None:
    conv = await store.active_conversation(KEY, NOW)
    for i, tokens in enumerate([10, 20, 30, 40]):
        await store.add_message(conv.id, user(f"m{i}", tokens))
    await store.add_message(conv.id, NewMessage("assistant", "r", 5, NOW, usage=ModelUsage("gpt-4.1-mini", 9, 3)))
    assert [m.content for m in await store.window(conv.id, 75)] == ["m2", "m3", "r"]
    assert [m.content for m in await store.window(conv.id, 1_000)] == ["m0", "m1", "m2", "m3", "r"]
    assert (await store.messages(conv.id))[-1].usage == ModelUsage("gpt-4.1-mini", 9, 3)
    assert await store.end_conversation(KEY, NOW) and not await store.end_conversation(KEY, NOW)
    assert (await store.active_conversation(KEY, NOW)).id != conv.id


async def test_images_are_stored_with_their_message_and_forgotten_with_it(store: Store) -> None:
    conv = await store.active_conversation(KEY, NOW)
    png, jpeg = (StoredImage("a.png", "image/png", b"\x89PNG\x00\xff" * 100, 64, 48, "auto", 85),
                 StoredImage("b.jpg", "image/jpeg", b"\xff\xd8\xff", 8, 8, "low", 85))  # fmt: skip
    first = await store.add_message(
        conv.id, replace(user("look [image: a.png] [image: b.jpg]", 200), images=(png, jpeg))
    )
    second = await store.add_message(conv.id, user("and again", 5))
    other = await store.add_message(conv.id, replace(user("mine", 90, author="u2"), images=(jpeg,)))
    assert await store.message_images([first.id, second.id, other.id]) == {first.id: [png, jpeg], other.id: [jpeg]}
    assert await store.message_images([]) == {}
    # The window says which messages carry images, so a text window reads no image table.
    assert [m.images for m in await store.window(conv.id, 1_000)] == [2, 0, 1]
    await store.forget_user("T1", "u1", "forgotten-1")
    assert await store.message_images([first.id, other.id]) == {other.id: [jpeg]}


async def test_one_thread_started_by_many_at_once_is_one_conversation(url: str) -> None:
    async with opened(url) as a, opened(url) as b:
        convs = await asyncio.gather(*(s.active_conversation(KEY, NOW) for s in (a, b) * 10))
    assert len({c.id for c in convs}) == 1


async def test_concurrent_appends_keep_running_totals_exact(url: str) -> None:
    async with opened(url) as a, opened(url) as b:
        conv = await a.active_conversation(KEY, NOW)
        await asyncio.gather(*(s.add_message(conv.id, user(f"m{i}", 10)) for i, s in enumerate((a, b) * 25)))
        assert len(await a.window(conv.id, 100)) == 10  # exact sums: exactly ten 10-token messages fit
        assert len(await a.window(conv.id, 99)) == 9


async def test_persona_is_copied_into_new_conversations(store: Store) -> None:
    await store.set_channel_settings(
        "slack", "T1", "C1", ChannelSettings("Be a pirate.", None, "gpt-4o-mini", "low"), "u", NOW
    )
    conv = await store.active_conversation(KEY, NOW)
    assert (conv.system_prompt, conv.model, conv.reasoning_effort) == ("Be a pirate.", "gpt-4o-mini", "low")
    assert await store.active_conversation(KEY, NOW) == conv  # as started, so read back
    assert await store.channel_settings("slack", "T1", "C1") == ChannelSettings(
        "Be a pirate.", None, "gpt-4o-mini", "low"
    )


async def test_two_processes_starting_the_same_threads_at_once_agree_on_one_conversation_each(url: str) -> None:
    keys = [ConversationKey("slack", "T1", "C1", f"{i}.0") for i in range(20)]
    async with opened(url) as a, opened(url) as b:
        started = await asyncio.gather(*(s.active_conversation(k, NOW) for k in keys for s in (a, b)))
        for i, key in enumerate(keys):
            mine, theirs = started[2 * i], started[2 * i + 1]
            assert mine == theirs and mine.key == key
        assert len({c.id for c in started}) == len(keys)


async def test_deliveries_are_claimed_once_across_connections(url: str) -> None:
    async with opened(url) as a, opened(url) as b:
        claims = await asyncio.gather(*(s.claim_delivery("slack", "Ev1", NOW) for s in (a, b) * 5))
        assert sorted(claims) == [False] * 9 + [True]
        assert await a.forget_deliveries(NOW + timedelta(seconds=1)) == 1


async def test_500_concurrent_reservations_from_two_processes_never_overspend(url: str) -> None:
    settings = load_settings(env_file=None, quota_team_monthly_usd="1.00")
    async with opened(url) as a, opened(url) as b:
        budgets = [Budget(s.ledger, settings, lambda: NOW) for s in (a, b)]
        outcomes = await spend_at_once(budgets, 500, reserve=usd_to_nanos("0.0037"), cost=usd_to_nanos("0.0031"),
                                       fail_every=5, users=7, refusal="monthly budget")  # fmt: skip
        rows = await a.ledger.ledger_rows("T1")
        totals = await a.ledger.totals("T1", "u1", "2026-11-24", "2026-11")
    spent = sum(cost for _, _, cost, _ in rows)
    assert outcomes.count("refused") > 0
    assert spent <= usd_to_nanos("1.00") and spent == outcomes.count("settled") * usd_to_nanos("0.0031")
    assert totals.team_month_nanos == spent  # the trigger-kept totals agree with the ledger
    assert not any(state == "reserved" for *_, state in rows)
    # SQLite keeps one row for the team's month; PostgreSQL spreads it, so concurrent calls don't queue on one row.
    kept = await team_month_rows(url, "T1", "2026-11")
    assert sum(kept) == spent and (len(kept) == 1 if url.startswith("sqlite") else 1 < len(kept) <= 16)


async def test_limits_are_audited_and_expired_reservations_released(store: Store) -> None:
    ledger = store.ledger
    await ledger.set_limit("T1", "u1", "daily_usd", 5, changed_by="admin", now=NOW)
    old = await ledger.set_limit("T1", "u1", "daily_usd", None, changed_by="admin", now=NOW)
    assert old is not None and old.value == 5
    assert await ledger.clear_limits("T1", "u1", changed_by="admin", now=NOW) == 1
    changes = await ledger.limit_changes("T1")
    assert [(c.old_set, c.new_set, c.new_value) for c in changes] == [
        (True, False, None),
        (True, True, None),
        (False, True, 5),
    ]
    settings = load_settings(env_file=None, reservation_ttl_seconds=60)
    clock = [NOW]
    budget = Budget(ledger, settings, lambda: clock[0], holder="other-host:1")
    async with budget.metered(Charge("slack", "T1", "u1", "C1", "chat", "m"), Units(), 100) as bill:
        bill.settled = True  # leave it reserved, as a crashed process would
    # A reservation written without a sent mark (by a version that marked it separately): never sent.
    never_sent = ReservationRequest(
        Charge("slack", "T1", "u2", "C1", "chat", "m"), Units(), 70, "2026-11-24", "2026-11", Limits(), NOW,
        NOW + timedelta(seconds=60), "other-host:1",
    )  # fmt: skip
    assert await ledger.reserve(never_sent) is not None
    clock[0] = NOW + timedelta(seconds=61)
    # A metered call is marked sent when reserved: charged its worst case; the unsent one is released.
    assert await ledger.release_expired(clock[0]) == Recovered(released=1, estimated=1)
    assert [(cost, state) for *_, cost, state in await ledger.ledger_rows("T1")] == [
        (100, "settled"), (0, "released")
    ]  # fmt: skip


async def test_prompt_library_versions_runs_ratings_export_import(url: str, tmp_path: Path) -> None:
    async with opened(url) as store:
        lib = store.prompts
        v1 = await lib.save_version("T1", "p", "One {x}", system_prompt=None, model=None, temperature=None,
                                    author_id="ann", now=NOW)  # fmt: skip
        v2 = await lib.save_version("T1", "p", "Two {x}", system_prompt="s", model="m", temperature=0.5,
                                    author_id="bob", now=NOW)  # fmt: skip
        assert (v1.version, v2.version) == (1, 2) and (await lib.version("T1", "p")) == v2
        run_id = await lib.add_run(PromptRun("u" * 16, v2.id, "T1", "ann", {"x": "1"}, "m", 0.5, "out", None,
                                             3, 4, 5, 6, NOW))  # fmt: skip
        assert await lib.rate("T1", run_id, "bob", 4, "ok", NOW) and not await lib.rate("T9", run_id, "bob", 4, "", NOW)
        [s1, s2] = sorted(await lib.stats("T1", "p"), key=lambda s: s.version)
        assert (s1.runs, s2.runs, s2.avg_rating) == (0, 1, 4.0)
        assert [s.name for s in await lib.summaries("T1", "P")] == ["p"]
        exported = await lib.export("T1")
        counts = await store.forget_user("T1", "ann", "forgotten-x")
        assert counts["prompt runs"] == 1
    async with fresh_database("sqlite", tmp_path / "copy") as copy_url, opened(copy_url) as copy:
        (tmp_path / "copy").mkdir(exist_ok=True)
        assert (await copy.prompts.import_(exported))["versions"] == 2
        assert (await copy.prompts.import_(exported))["versions"] == 0
        assert [v.template for v in await copy.prompts.versions("T1", "p")] == ["One {x}", "Two {x}"]


async def test_the_engine_runs_a_metered_conversation_on_either_store(url: str, make_settings: Any) -> None:
    from bot.app import open_engine
    from tests.fakes.responder import RecordingResponder
    from tests.harness.messages import message

    settings = make_settings(database_url=url, quota_user_daily_usd="1")
    responder = RecordingResponder()
    async with open_engine(settings) as engine:
        await engine.handle(message("first", platform="slack", team="T1"), responder)
        await engine.handle(message("second", platform="slack", team="T1"), responder)
        await engine.handle(message("/usage", platform="slack", team="T1"), responder)
    assert responder.replies == ["echo: first", "echo: second"]
    assert responder.texts[-1][0].startswith("Today: $0.0")


async def test_two_processes_answering_one_thread_never_interleave_turns(
    tmp_path: Path, make_settings: Any, fake_openai: Any
) -> None:
    from bot.app import open_engine
    from tests.fakes.openai_server import Reply
    from tests.fakes.responder import RecordingResponder
    from tests.harness.messages import message

    async with fresh_database("postgres", tmp_path) as url:
        settings = make_settings(database_url=url)
        fake_openai.enqueue(*[Reply(f"reply {i}", chunk_chars=2, delay_between_chunks=0.005) for i in range(6)])
        async with open_engine(settings) as first, open_engine(settings) as second:
            await asyncio.gather(
                *(engine.handle(message(f"q{i}", user=f"u{i}", platform="slack", team="T1"), RecordingResponder())
                  for i, engine in enumerate([first, second] * 3))
            )  # fmt: skip
            async with opened(url) as store:
                conv = await store.active_conversation(message("x", platform="slack", team="T1").conversation_key, NOW)
                roles = [m.role for m in await store.messages(conv.id)]
    assert roles == ["user", "assistant"] * 6


async def test_migrate_db_copies_everything_and_the_bot_carries_on(
    tmp_path: Path, make_settings: Any, fake_openai: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import open_engine
    from tests.fakes.responder import RecordingResponder
    from tests.harness.admin_cli import run_cli
    from tests.harness.messages import message

    async with open_engine(make_settings(quota_user_daily_usd="5")) as engine:
        for line in ("hello", "/prompt save p Hi {x}", "/prompt run p x=1", "/prompt rate 1 5",
                     "/persona set Be brief.", "/quota set user bob daily 1"):  # fmt: skip
            await engine.handle(message(line, admin=True), RecordingResponder())
        from tests.harness.vision import attachment, png

        picture = attachment("kite.png", png(16, 16))
        await engine.handle(message("look", channel="pics", attachments=(picture,)), RecordingResponder())
        assert await engine.first_delivery("slack", "Ev1")
    async with fresh_database("postgres", tmp_path) as target:
        code, out, err = await run_cli("migrate-db", "--from", db_url, "--to", target)
        assert code == 0, err
        lines = out.splitlines()
        assert lines[-1] == "All counts match."
        assert "messages: 4" in lines and "usage_ledger: 3" in lines and "prompt_ratings: 1" in lines
        assert "message_images: 1" in lines
        assert "conversation token totals (checked): 2" in lines, lines  # PostgreSQL's, set from the copied messages
        await assert_totals_kept(target)
        assert (await run_cli("migrate-db", "--from", db_url, "--to", target))[2].startswith("the target is not empty")

        responder = RecordingResponder()
        async with open_engine(make_settings(database_url=target, quota_user_daily_usd="5")) as engine:
            await engine.handle(message("and again"), responder)
            assert not await engine.first_delivery("slack", "Ev1")  # redelivery claims came along
            await engine.handle(message("/usage"), responder)
        assert responder.replies == ["echo: and again"]
        sent = [m["content"] for m in fake_openai.chat_requests()[-1]["messages"][1:]]
        assert sent == ["hello", "echo: hello", "and again"]
        assert responder.texts[-1][0].startswith("Today: $0.0") and "(4 calls)" in responder.texts[-1][0]


async def test_memory_queue_claims_once_and_retries_after_the_lease(store: Store) -> None:
    conv = await store.active_conversation(KEY, NOW)
    ids = [(await store.add_message(conv.id, user(f"m{i}", 5))).id for i in range(6)]
    lease = NOW + timedelta(minutes=5)
    # Two embedders at once (two processes on PostgreSQL) never take the same message.
    first, second = await asyncio.gather(
        store.memory.claim_pending(3, NOW, lease), store.memory.claim_pending(3, NOW, lease)
    )
    claimed = [p.message_id for p in first] + [p.message_id for p in second]
    assert sorted(claimed) == ids and len(set(claimed)) == 6
    assert first[0].content.startswith("m") and (first[0].platform, first[0].team_id, first[0].channel_id) == (
        "slack", "T1", "C1",
    )  # fmt: skip
    assert await store.memory.claim_pending(10, NOW, lease) == []
    await store.memory.save_vectors("m@2", [MessageVector(ids[0], "m0", vector(1, 0))])
    await store.memory.skip([ids[1]])
    later = lease + timedelta(seconds=1)
    assert [p.message_id for p in await store.memory.claim_pending(10, later, later + timedelta(minutes=5))] == ids[2:]


def vector(*values: float) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


async def test_memory_scans_pages_within_a_scope(store: Store) -> None:
    conv = await store.active_conversation(KEY, NOW)
    other_key = ConversationKey("slack", "T1", "C2", "172.1")
    other = await store.active_conversation(other_key, NOW)
    later = NOW + timedelta(days=3)
    ids = [(await store.add_message(conv.id, user(f"m{i}", 5))).id for i in range(3)]
    ids.append((await store.add_message(other.id, NewMessage("user", "x", 5, later, author_id="u2"))).id)
    texts = ["m0", "m1", "m2", "x"]
    await store.memory.save_vectors("m@2", [MessageVector(i, texts[n], vector(1, n)) for n, i in enumerate(ids)])
    team = VectorScope("slack", "T1", "m@2")

    async def scan(scope: VectorScope, page: int = 10) -> list[int]:
        found, after = [], 0
        while (rows := await store.memory.scan(scope, after, page)).ids:
            assert len(rows.vectors) == 8 * len(rows.ids)
            found += rows.ids
            after = max(rows.ids)
        return found

    assert await scan(team, page=2) == ids
    assert (await store.memory.scan(team, 0, 2)).vectors == vector(1, 0) + vector(1, 1)
    assert await scan(replace(team, channels=["C2"])) == ids[3:]
    assert await scan(replace(team, channels=[])) == []
    assert await scan(replace(team, conversation_id=conv.id, before_message_id=ids[2])) == ids[:2]
    assert await scan(replace(team, since=later)) == ids[3:]
    assert await scan(replace(team, team_id="T2")) == []
    assert await store.memory.channels("slack", "T1", "m@2") == ["C1", "C2"]
    hits = {h.message_id: h for h in await store.memory.hits([ids[0], ids[3], 10_000])}
    assert set(hits) == {ids[0], ids[3]}
    assert (hits[ids[3]].content, hits[ids[3]].channel_id, hits[ids[3]].thread_id) == ("x", "C2", "172.1")
    assert hits[ids[3]].created_at == later
    # A message keeps one vector, of the latest model; after a model change the rest wait to be redone.
    await store.memory.save_vectors("other@2", [MessageVector(ids[0], "m0", vector(0, 1))])
    assert await scan(VectorScope("slack", "T1", "other@2")) == ids[:1]
    assert await scan(team) == ids[1:]
    assert await store.memory.requeue_other_models("other@2") == 3
    pending = await store.memory.claim_pending(10, NOW, NOW + timedelta(minutes=5))
    assert [p.message_id for p in pending] == ids[1:]
    # Forgetting a user takes their vectors with their messages.
    await store.forget_user("T1", "u1", "forgotten")
    assert await scan(team) == ids[3:]
    assert await scan(VectorScope("slack", "T1", "other@2")) == []


async def test_postgres_turn_leases_exclude_each_other_and_a_dead_holders_lapses(tmp_path: Path) -> None:
    import asyncpg

    async with fresh_database("postgres", tmp_path) as url, opened(url) as first, opened(url) as second:
        order: list[str] = []

        async def turn(store: Store, name: str, hold: float) -> None:
            async with store.turn_lock(KEY):
                order.append(f"{name} in")
                await asyncio.sleep(hold)
                order.append(f"{name} out")

        await asyncio.gather(turn(first, "a", 0.2), turn(second, "b", 0.0))
        assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM turn_leases") == 0  # released
            await conn.execute("INSERT INTO turn_leases VALUES ('slack:T1:C2:9', 'dead', now() - interval '1 second')")
        finally:
            await conn.close()
        async with asyncio.timeout(2), second.turn_lock(ConversationKey("slack", "T1", "C2", "9")):
            pass  # the lapsed lease of a process that died is taken over at once


async def test_teams_are_those_with_conversations_or_calls_and_usage_rows_name_their_team(store: Store) -> None:
    assert await store.teams() == []
    await store.active_conversation(KEY, NOW)
    await store.active_conversation(replace(KEY, thread_id="171.2"), NOW + timedelta(minutes=1))
    budget = Budget(store.ledger, load_settings(env_file=None), lambda: NOW + timedelta(hours=1))
    for team, state in (("G9", "settle"), ("G8", "release")):  # a released call leaves no trace of its team
        async with budget.metered(
            Charge("discord", team, "u1", "c1", "image", "gpt-image-1"), Units(images=1), 40
        ) as held:
            if state == "settle":
                await held.settle(Units(images=1), 40)
    seen = [(t.platform, t.team_id, t.conversations, t.calls, t.last_active[:16]) for t in await store.teams()]
    assert seen == [("discord", "G9", 0, 1, "2026-11-24T13:00"), ("slack", "T1", 2, 0, "2026-11-24T12:01")]
    [row] = await store.ledger.usage(None, "2026-11-01")
    assert (row.platform, row.team_id, row.user_id, row.images, row.cost_nanos) == ("discord", "G9", "u1", 1, 40)


async def test_the_reserving_statement_applies_admin_overrides_user_first_then_everyone_then_the_default(
    store: Store,
) -> None:
    ledger = store.ledger
    overrides: list[tuple[str, Metric, int | None]] = [
        ("*", "daily_usd", usd_to_nanos("0.20")), ("vip", "daily_usd", None), ("", "monthly_usd", usd_to_nanos("1")),
        ("*", "daily_images", 2), ("u2", "daily_images", 5),
    ]  # fmt: skip
    for subject, metric, value in overrides:
        await ledger.set_limit("T1", subject, metric, value, changed_by="admin", now=NOW)
    budget = Budget(ledger, load_settings(env_file=None, quota_user_daily_usd="0.10"), lambda: NOW)

    async def spend(user: str, usd: str = "0", images: int = 0) -> str:
        charge = Charge("slack", "T1", user, "C1", "image" if images else "chat", "m")
        try:
            async with budget.metered(charge, Units(images=images), usd_to_nanos(usd)) as bill:
                await bill.settle(Units(images=images), usd_to_nanos(usd))
        except QuotaExceeded as refused:
            return refused.message.split(";")[0]
        return "ok"

    assert await spend("u1", "0.15") == "ok"  # the every-user 0.20 beats the default 0.10
    assert await spend("u1", "0.10") == "You've used $0.15 of your $0.20 daily budget"
    assert await spend("vip", "0.80") == "ok"  # vip's own override: no daily limit
    assert await spend("vip", "0.10") == "The team has used $0.95 of its $1.00 monthly budget"
    assert await spend("u2", images=3) == "ok"  # u2's own 5 images beat everyone's 2
    assert await spend("u3", images=3) == "You've made 0 of your 2 images today (this asks for 3)"


async def test_the_reserving_statement_decides_as_the_rule_in_python_for_every_mix_of_overrides(store: Store) -> None:
    """The user's override, everyone's ('*') and the settings' default: each unset, unlimited (None) or a number;
    the team's monthly one and its default likewise. For requests on either side of each limit, the statement
    reserves exactly when `fits` allows it on `effective`'s limits."""
    ledger = store.ledger
    budget = Budget(ledger, load_settings(env_file=None), lambda: NOW)
    unset = object()
    metrics: tuple[Metric, ...] = ("daily_images", "monthly_usd")
    mixes = [
        (metric, own, everyone, default)
        for metric in metrics
        for own in (unset, None, 3)
        for everyone in ((unset, None, 5) if metric == "daily_images" else (unset,))
        for default in (None, 4)
    ]
    for n, (metric, own, everyone, default) in enumerate(mixes):
        team, subject = f"T{n}", "u1" if metric == "daily_images" else ""
        overrides: list[LimitOverride] = []
        for who, value in ((subject, own), ("*", everyone)):
            if value is not unset:
                assert value is None or isinstance(value, int)
                await ledger.set_limit(team, who, metric, value, changed_by="admin", now=NOW)
                overrides.append(LimitOverride(who, metric, value))
        defaults = Limits(user_daily_images=default) if metric == "daily_images" else Limits(team_monthly_nanos=default)
        for asked in range(7):
            images, cost = (asked, 0) if metric == "daily_images" else (0, asked)
            request = replace(
                budget.request(Charge("slack", team, "u1", "C1", "image", "m"), Units(images=images), cost),
                defaults=defaults,
            )
            expected = fits(request, effective(defaults, overrides, "u1"), PeriodTotals())
            where = ConversationKey("slack", team, "C1", "")
            opened = await store.open_turn(
                TurnOpening(where, NOW, lambda _: Question(user("q", 1), 100), lambda *_, made=request: made)
            )
            assert (opened.reserved is not None) == expected, (metric, own, everyone, default, asked)
            if opened.reserved is not None:
                await ledger.release(opened.reserved, NOW)


async def test_a_reply_that_cannot_be_stored_rolls_back_its_settlement_and_the_call_is_still_charged(
    store: Store,
) -> None:
    budget = Budget(store.ledger, load_settings(env_file=None), lambda: NOW)
    conversation = await store.active_conversation(KEY, NOW)
    reply = NewMessage("assistant", "the answer", 5, NOW)

    async def along(settlement: Settlement) -> bool:
        _, held = await store.add_reply(conversation.id + 1_000, reply, settlement)  # no such conversation
        return held

    async with budget.metered(Charge("slack", "T1", "u1", "C1", "chat", "m"), Units(), 100) as bill:
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            await bill.settle(Units(output_tokens=3), 60, along=along)
        # One transaction: the settle went with the reply that failed.
        assert [(cost, state) for *_, cost, state in await store.ledger.ledger_rows("T1")] == [(100, "reserved")]
    # The provider billed it: leaving the block charges what was spent instead of releasing it.
    assert [(cost, state) for *_, cost, state in await store.ledger.ledger_rows("T1")] == [(60, "settled")]
    assert await store.messages(conversation.id) == []


async def test_the_turn_lease_goes_with_the_reply_so_the_thread_is_free_once_the_reply_is_stored(url: str) -> None:
    async with opened(url) as first, opened(url) as second:
        conversation = await first.active_conversation(KEY, NOW)
        budget = Budget(first.ledger, load_settings(env_file=None), lambda: NOW)
        async with first.turn_lock(KEY) as lease:
            async with budget.metered(Charge("slack", "T1", "u1", "C1", "chat", "m"), Units(), 100) as bill:
                settlement = Settlement(bill.id, Units(output_tokens=2), 40, NOW)
                _, held = await first.add_reply(
                    conversation.id, NewMessage("assistant", "hi", 2, NOW), settlement, lease
                )
                bill.settled = held
            # Another process takes the thread at once, while this block has not ended yet.
            async with asyncio.timeout(2), second.turn_lock(KEY):
                pass
        assert [m.content for m in await second.messages(conversation.id)] == ["hi"]
        assert [(cost, state) for *_, cost, state in await second.ledger.ledger_rows("T1")] == [(40, "settled")]


async def test_the_in_flight_lease_goes_with_the_reply_so_the_person_may_ask_again_at_once(store: Store) -> None:
    ledger, later = store.ledger, NOW + timedelta(seconds=60)
    conversation = await store.active_conversation(KEY, NOW)
    lease = await ledger.claim_in_flight("slack", "T1", "ann", "p:1", NOW, later, 1)
    assert lease is not None and await ledger.claim_in_flight("slack", "T1", "ann", "p:1", NOW, later, 1) is None
    running = InFlightLease(lease)
    budget = Budget(ledger, load_settings(env_file=None), lambda: NOW)
    async with budget.metered(Charge("slack", "T1", "ann", "C1", "chat", "m"), Units(), 100) as bill:
        settlement = Settlement(bill.id, Units(output_tokens=2), 40, NOW)
        _, bill.settled = await store.add_reply(conversation.id, NewMessage("assistant", "hi", 2, NOW), settlement,
                                                running=running)  # fmt: skip
    assert running.released
    assert await ledger.claim_in_flight("slack", "T1", "ann", "p:1", NOW, later, 1) is not None


async def test_a_settlement_keeps_its_reasoning_tokens_apart_in_the_usage_rows(store: Store) -> None:
    budget = Budget(store.ledger, load_settings(env_file=None), lambda: NOW)
    charge = Charge("slack", "T1", "u1", "C1", "chat", "o4-mini")
    for reasoning in (800, 200):
        async with budget.metered(charge, Units(input_tokens=100, output_tokens=2_000), 5_000) as held:
            await held.settle(Units(input_tokens=100, output_tokens=1_000, reasoning_tokens=reasoning), 3_000)
    [row] = await store.ledger.usage("T1", "2026-11-01")
    assert (row.calls, row.output_tokens, row.reasoning_tokens, row.cost_nanos) == (2, 2_000, 1_000, 6_000)
