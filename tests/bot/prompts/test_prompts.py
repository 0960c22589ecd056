"""Team prompt experiments through the engine: versions, runs, comparisons, ratings, export/import."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import open_engine
from bot.chat.engine import Engine
from bot.errors import BadCommand
from bot.prompts.assignments import join_assignments, split_assignments
from bot.prompts.template import fill, variables
from bot.settings import Settings
from storage import open_store
from tests.fakes.openai_server import FakeOpenAI, Reply, ServerError
from tests.fakes.responder import RecordingResponder
from tests.harness.messages import message


async def say(engine: Engine, line: str, **who: Any) -> RecordingResponder:
    responder = RecordingResponder()
    await engine.handle(message(line, **who), responder)
    return responder


def last_text(responder: RecordingResponder) -> str:
    return responder.texts[-1][0]


async def test_saving_again_makes_a_new_version_with_author_and_variables(engine: Engine) -> None:
    r = await say(engine, "/prompt save summary Summarize {text} in a {tone} tone.", user="ann")
    assert last_text(r) == "Saved summary v1 (variables: text, tone)."
    r = await say(engine, '/prompt save summary system="You are terse." temperature=0.2 Summarize {text}.', user="bob")
    assert last_text(r) == "Saved summary v2 (variables: text)."
    shown = last_text(await say(engine, "/prompt show summary"))
    assert shown.startswith("summary v2 by bob") and "System: You are terse." in shown and "temperature: 0.2" in shown
    assert shown.endswith("Summarize {text}.")
    assert last_text(await say(engine, "/prompt show summary@v1")).endswith("Summarize {text} in a {tone} tone.")
    listing = last_text(await say(engine, "/prompt list sum"))
    assert listing.startswith("summary (v2, by ann, 0 runs")
    diff = last_text(await say(engine, "/prompt diff summary v1 v2"))
    assert "-Summarize {text} in a {tone} tone." in diff and "+system: You are terse." in diff


async def test_run_fills_variables_streams_and_records_everything(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    await say(engine, "/prompt save greet Say hello to {who} about {topic}.")
    fake_openai.enqueue(Reply("Hello, Ada!", prompt_tokens=20, completion_tokens=4))
    r = await say(engine, '/prompt run greet who=Ada topic="two words" temperature=0.7', user="ann")
    assert r.replies == ["Hello, Ada!"]
    request = fake_openai.chat_requests()[-1]
    assert request["messages"][-1] == {"role": "user", "content": "Say hello to Ada about two words."}
    assert request["temperature"] == 0.7
    footer = last_text(r)
    assert footer.startswith("Run #1 · greet v1 · gpt-4.1-mini · 20+4 tokens · $0.0000144 · ")
    store = await open_store(settings.database_url)
    run = await store.prompts.run("local", 1)
    await store.close()
    assert run is not None
    assert (run.inputs, run.model, run.temperature, run.output) == (
        {"who": "Ada", "topic": "two words"}, "gpt-4.1-mini", 0.7, "Hello, Ada!"
    )  # fmt: skip
    assert (run.input_tokens, run.output_tokens, run.cost_nanos) == (20, 4, 20 * 400 + 4 * 1600)
    assert run.latency_ms >= 0 and run.error is None


async def test_a_missing_or_unknown_variable_lists_what_is_expected(engine: Engine, fake_openai: FakeOpenAI) -> None:
    await say(engine, "/prompt save greet Say hello to {who} about {topic}.")
    r = await say(engine, "/prompt run greet who=Ada colour=red")
    assert r.errors == ["This prompt expects who=… topic=… (missing topic; unknown colour)."]
    r = await say(engine, "/prompt run greet Ada")
    assert r.errors == ["Give variables as name=value; 'Ada' has no '='."]
    r = await say(engine, "/prompt run nothing x=1")
    assert r.errors == ["No prompt called 'nothing'. See /prompt list."]
    r = await say(engine, "/prompt run greet@v7 who=a topic=b")
    assert r.errors == ["greet has no v7; the latest is v1."]
    assert fake_openai.chat_requests() == []


async def test_models_outside_the_allow_list_are_refused(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    async with open_engine(make_settings(allowed_chat_models="gpt-4o-mini")) as engine:
        await say(engine, "/prompt save p Hi {x}")
        r = await say(engine, "/prompt run p x=1 model=gpt-4o")
        assert r.errors == [
            "Model 'gpt-4o' is not allowed here. Allowed: gpt-4.1-mini, gpt-4o-mini (ALLOWED_CHAT_MODELS)."
        ]
        await say(engine, "/prompt run p x=1 model=gpt-4o-mini")
    assert [req["model"] for req in fake_openai.chat_requests()] == ["gpt-4o-mini"]


async def test_compare_runs_the_grid_under_one_reservation_and_keeps_good_cells(
    make_settings: Any, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(allowed_chat_models="gpt-4o-mini", prompt_compare_max=4)
    async with open_engine(settings) as engine:
        await say(engine, "/prompt save p Write about {x}.")
        await say(engine, "/prompt save p Write briefly about {x}.")
        fake_openai.enqueue(
            Reply("a", prompt_tokens=100, completion_tokens=10),
            ServerError(500),
            Reply("c", prompt_tokens=100, completion_tokens=30),
            Reply("d", prompt_tokens=100, completion_tokens=40),
        )
        r = await say(engine, "/prompt compare p versions=v1,v2 models=gpt-4.1-mini,gpt-4o-mini x=cats")
        too_big = await say(
            engine, "/prompt compare p versions=v1,v2 models=gpt-4.1-mini,gpt-4o-mini temperatures=0,1 x=y"
        )
    assert too_big.errors == ["That grid has 8 cells; the most is 4 (PROMPT_COMPARE_MAX)."]
    report = last_text(r)
    assert report.count("── ") == 4 and report.count("· failed") == 1
    store = await open_store(settings.database_url)
    ledger = await store.ledger.ledger_rows("local")
    runs = [await store.prompts.run("local", i) for i in range(1, 5)]
    await store.close()
    # One ledger row for the whole grid, settled to the sum of its cells' costs.
    [(kind, model, cost, state)] = ledger
    assert (kind, model, state) == ("chat", "gpt-4.1-mini+gpt-4o-mini", "settled")
    assert cost == sum(run.cost_nanos for run in runs if run is not None)
    assert sorted(run.error is None for run in runs if run is not None) == [False, True, True, True]


async def test_ratings_and_history_put_the_best_version_first(engine: Engine, fake_openai: FakeOpenAI) -> None:
    await say(engine, "/prompt save p v1 {x}")
    await say(engine, "/prompt save p v2 {x}")
    await say(engine, "/prompt run p@v1 x=a")
    await say(engine, "/prompt run p@v2 x=a")
    assert last_text(await say(engine, "/prompt rate 1 2 meh", user="ann")) == "Rated run #1: 2/5."
    assert last_text(await say(engine, "/prompt rate #2 5 great", user="ann")) == "Rated run #2: 5/5."
    await say(engine, "/prompt rate 2 4", user="bob")
    await say(engine, "/prompt rate 2 3", user="bob")  # rating again replaces bob's rating
    assert (await say(engine, "/prompt rate 2 6")).errors == ["Rate from 1 to 5, not '6'."]
    assert (await say(engine, "/prompt rate 99 3")).errors == ["No run #99 in this team."]
    assert (await say(engine, "/prompt rate 1 3", team="other")).errors == ["No run #1 in this team."]
    history = last_text(await say(engine, "/prompt history p")).splitlines()
    assert history[0] == "Versions of p, best first:"
    assert history[1].startswith("  v2: 4.0/5 (2 ratings) · 1 run ·")
    assert history[2].startswith("  v1: 2.0/5 (1 rating) · 1 run ·")


async def test_deleting_is_for_the_author_or_an_admin_and_keeps_runs(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    await say(engine, "/prompt save p Hi {x}", user="ann")
    await say(engine, "/prompt run p x=1", user="bob")
    assert (await say(engine, "/prompt delete p", user="bob")).errors == [
        "Only ann (its author) or an admin can delete p."
    ]
    assert last_text(await say(engine, "/prompt delete p", user="root", admin=True)).startswith("Deleted p.")
    assert (await say(engine, "/prompt show p")).errors == ["No prompt called 'p'. See /prompt list."]
    exported = json.loads((await say(engine, "/prompt export")).files[0].data)
    [prompt] = exported["prompts"]
    assert prompt["deleted_by"] == "root" and prompt["versions"][0]["runs"][0]["inputs"] == {"x": "1"}


async def test_export_then_import_into_an_empty_database_gives_the_same_library(
    engine: Engine, fake_openai: FakeOpenAI, make_settings: Any, tmp_path: Any
) -> None:
    await say(engine, "/prompt save a One {x}", user="ann")
    await say(engine, '/prompt save a model=gpt-4.1-mini temperature=1 Two {x} "quoted"', user="bob")
    await say(engine, "/prompt save b Ünïcødé ✓ {y}")
    await say(engine, "/prompt run a x=1")
    await say(engine, "/prompt rate 1 4 nice", user="cy")
    original = json.loads((await say(engine, "/prompt export")).files[0].data)

    from bot.prompts.exchange import parse_export

    other = make_settings(database_url=f"sqlite:///{tmp_path / 'other.sqlite3'}")
    store = await open_store(other.database_url)
    records = parse_export(original)
    assert await store.prompts.import_(records) == {"prompts": 2, "versions": 3, "runs": 1, "ratings": 1}
    assert await store.prompts.import_(records) == {"prompts": 0, "versions": 0, "runs": 0, "ratings": 0}
    await store.close()
    async with open_engine(other) as copy:
        again = json.loads((await say(copy, "/prompt export")).files[0].data)

    def without_ids(doc: Any) -> Any:
        if isinstance(doc, dict):
            return {k: without_ids(v) for k, v in doc.items() if k not in ("id", "version_id")}
        if isinstance(doc, list):
            return [without_ids(v) for v in doc]
        return doc

    assert without_ids(again) == without_ids(original)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"format": "teambot-prompts/1", "prompts": [{"name": "x"}]}, "Not a valid prompt export: prompts.0.team_id"),
        ({"format": "other/9", "prompts": []}, "Unknown export format 'other/9'"),
        ([1, 2], "Not a valid prompt export"),
    ],
)
def test_import_validates_before_writing(document: Any, problem: str) -> None:
    from bot.prompts.exchange import parse_export

    with pytest.raises(BadCommand, match=problem.replace(".", r"\.")):
        parse_export(document)


async def test_persona_applies_to_new_conversations_in_that_channel_only(
    engine: Engine, fake_openai: FakeOpenAI
) -> None:
    await say(engine, "hello", channel="c1")  # a conversation that started before the persona
    assert (await say(engine, "/persona set Talk like a pirate.")).errors == [
        "Only admins can change the persona; /persona show is open to everyone."
        " Start the console with --admin to speak as an admin (make run ARGS=--admin)."
    ]
    assert last_text(await say(engine, "/persona set Talk like a pirate.", admin=True)).startswith("Persona set;")
    await say(engine, "again", channel="c1")
    await say(engine, "hi", channel="c2")
    await say(engine, "/reset", channel="c1")
    await say(engine, "fresh", channel="c1")
    systems = [req["messages"][0]["content"] for req in fake_openai.chat_requests()]
    assert systems[0] == systems[1] == systems[2] != "Talk like a pirate."
    assert systems[3] == "Talk like a pirate."
    await say(engine, "/prompt save pirate You are a pirate captain.")
    assert last_text(await say(engine, "/persona use pirate", admin=True)).startswith("Persona set from pirate@v1")
    assert "(from pirate@v1)" in last_text(await say(engine, "/persona show"))


async def test_model_is_set_by_admins_from_the_allow_list(make_settings: Any, fake_openai: FakeOpenAI) -> None:
    async with open_engine(make_settings(allowed_chat_models="gpt-4o-mini")) as engine:
        assert (await say(engine, "/model set gpt-4o-mini")).errors[0].startswith("Only admins can change the model")
        assert (await say(engine, "/model set gpt-5", admin=True)).errors[0].startswith("Model 'gpt-5' is not allowed")
        assert (
            last_text(await say(engine, "/model set gpt-4o-mini", admin=True)) == "This channel now uses gpt-4o-mini."
        )
        await say(engine, "hi")
        await say(engine, "/ask hi")
        await say(engine, "hi", channel="elsewhere")
    assert [r["model"] for r in fake_openai.chat_requests()] == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4.1-mini"]


# --- the parsers, property-tested -------------------------------------------------------------

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@given(st.dictionaries(names, st.text(max_size=30)))
def test_assignments_round_trip_through_shell_splitting(values: dict[str, str]) -> None:
    positional, parsed = split_assignments(shlex.split(join_assignments(values)))
    assert positional == [] and parsed == values


@given(st.lists(st.text(max_size=20), max_size=8))
def test_assignment_splitting_never_crashes(words: list[str]) -> None:
    try:
        positional, values = split_assignments(words)
    except BadCommand as exc:
        assert "given twice" in exc.message
    else:
        assert len(positional) + len(values) == len(words)


@given(st.text(max_size=60), st.dictionaries(names, st.text(max_size=10), max_size=4))
def test_filling_never_evaluates_and_never_crashes(template: str, values: dict[str, str]) -> None:
    try:
        out = fill(template, values)
    except BadCommand:
        assert set(values) != set(variables(template))
    else:
        assert set(values) == set(variables(template))
        assert isinstance(out, str)


def test_format_like_fields_are_literal_text() -> None:
    template = "{x.__class__} {0} {x[0]} {{x}} {x}"
    assert variables(template) == ["x"]
    assert fill(template, {"x": "<v>"}) == "{x.__class__} {0} {x[0]} {x} <v>"


async def test_forget_removes_my_messages_runs_and_ratings_and_pseudonymizes_the_ledger(
    engine: Engine, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    await say(engine, "my secret plan", user="ann")
    await say(engine, "bob's note", user="bob", channel="c2")
    await say(engine, "/prompt save p Hi {x}", user="ann")
    await say(engine, "/prompt run p x=1", user="ann")
    await say(engine, "/prompt rate 1 5", user="bob")
    asked = last_text(await say(engine, "/forget", user="ann"))
    assert asked.endswith("To go ahead: /forget confirm")
    done = last_text(await say(engine, "/forget confirm", user="ann"))
    # 4: two ledger rows, the prompt and its version; today's spend total stays with ann (it keeps counting).
    assert done == (
        "Done. Removed or pseudonymized: 1 message, 1 reply, 0 ratings, 1 prompt run, 0 dashboard sign-ins, "
        "0 assistant threads, 4 records pseudonymized."
    )
    store = await open_store(settings.database_url)
    try:
        conv = await store.active_conversation(message("x").conversation_key, message("x").created_at)
        assert await store.messages(conv.id) == []
        conv2 = await store.active_conversation(message("x", channel="c2").conversation_key, message("x").created_at)
        assert [m.content for m in await store.messages(conv2.id)] == ["bob's note", "echo: bob's note"]
        rows = await store.ledger.usage("local", "2000-01-01")
        [pseudonym] = {r.user_id for r in rows} - {"bob"}
        # A random pseudonym: not a hash of team and user, which anyone with the user list could reverse.
        assert pseudonym.startswith("forgotten-") and pseudonym != f"forgotten-{_digest('local', 'ann')}"
        assert sum(r.cost_nanos for r in rows) > 0  # the team's spend is kept
        assert await store.prompts.run("local", 1) is None
        assert await store.prompts.creator("local", "p") == pseudonym
    finally:
        await store.close()


def _digest(team: str, user: str) -> str:
    import hashlib

    return hashlib.sha256(f"{team}:{user}".encode()).hexdigest()[:12]


async def test_diff_shows_a_change_of_temperature_or_model_not_only_of_text(make_settings: Any) -> None:
    async with open_engine(make_settings(allowed_chat_models="gpt-4o-mini")) as engine:
        await say(engine, "/prompt save p temperature=0.2 Summarize {text}.")
        await say(engine, "/prompt save p temperature=0.9 Summarize {text}.")
        await say(engine, "/prompt save p temperature=0.9 model=gpt-4o-mini Summarize {text}.")
        await say(engine, "/prompt save p temperature=0.9 model=gpt-4o-mini Summarize {text}.")
        temperature = last_text(await say(engine, "/prompt diff p v1 v2")).splitlines()
        model = last_text(await say(engine, "/prompt diff p v2 v3")).splitlines()
        same = last_text(await say(engine, "/prompt diff p v3 v4"))
    assert "-temperature: 0.2" in temperature and "+temperature: 0.9" in temperature
    assert "-model: (the channel’s)" in model and "+model: gpt-4o-mini" in model
    assert same == "p v3 and v4 are the same: text, system prompt, model and temperature."


async def test_persona_use_takes_the_prompts_system_text_and_fills_its_variables(
    engine: Engine, fake_openai: FakeOpenAI
) -> None:
    await say(engine, '/prompt save tutor system="You teach {subject} to {level} students." Explain {topic}.')
    await say(engine, "/prompt save plain Answer like a {role}.")
    refused = await say(engine, "/persona use tutor", admin=True)
    assert refused.errors == [
        "tutor@v1's system text cannot be a persona as it is: fill its {subject}, {level}. "
        "Try: /persona use tutor subject=… level=…"
    ]
    assert (await say(engine, "/persona use plain role=pirate extra=1", admin=True)).errors == [
        "plain@v1's text cannot be a persona as it is: it has no extra. Try: /persona use plain role=…"
    ]
    said = await say(engine, "/persona use tutor subject=chemistry level=first-year", admin=True)
    assert last_text(said).startswith("Persona set from tutor@v1")
    await say(engine, "what is a mole?")
    assert fake_openai.chat_requests()[-1]["messages"][0]["content"] == "You teach chemistry to first-year students."
    await say(engine, "/reset")
    await say(engine, "/persona use plain role=pirate", admin=True)
    await say(engine, "ahoy")
    assert fake_openai.chat_requests()[-1]["messages"][0]["content"] == "Answer like a pirate."
