"""The dashboard's prompt pages: the team's library, versions, runs with ratings, comparisons side by side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.errors import BadCommand
from storage import Store
from storage.prompt_records import PromptRun, PromptSummary, PromptVersion, VersionStats
from storage.signins import WebSession

# A /prompt compare records its cells one after another, by one person, with the same inputs.
SAME_COMPARISON = timedelta(seconds=10)
MOST_COLUMNS = 12


@dataclass(frozen=True)
class PromptPage:
    """One prompt: its versions, how each did, and its runs newest first."""

    name: str
    versions: list[PromptVersion]
    stats: list[VersionStats]
    runs: list[tuple[PromptVersion, PromptRun]]
    comparisons: list[list[int]]  # run ids of each /prompt compare, newest first


async def library(store: Store, session: WebSession) -> list[PromptSummary]:
    """The team's live prompts."""
    return await store.prompts.summaries(session.grant.team_id)


async def prompt_page(store: Store, session: WebSession, name: str) -> PromptPage:
    """Everything the prompt's page shows, or a clear error when the team has no such prompt."""
    team = session.grant.team_id
    prompts = store.prompts
    versions = await prompts.versions(team, name)
    if not versions:
        raise BadCommand(f"No prompt called {name!r} in this team.")
    by_id = {v.id: v for v in versions}
    runs: list[tuple[PromptVersion, PromptRun]] = []
    for record in await prompts.export(team):
        if record.name != name or record.deleted_at is not None:
            continue
        for version, version_runs in record.versions:
            runs.extend((by_id.get(version.id, version), run) for run in version_runs)
    runs.sort(key=lambda pair: pair[1].id, reverse=True)
    return PromptPage(name, versions, await prompts.stats(team, name), runs, comparisons([r for _, r in runs]))


def comparisons(runs: list[PromptRun]) -> list[list[int]]:
    """Runs recorded together by one /prompt compare: same person, same inputs, moments apart; newest first."""
    groups: list[list[PromptRun]] = []
    for run in sorted(runs, key=lambda r: r.id):
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and last.user_id == run.user_id
            and last.inputs == run.inputs
            and abs(run.created_at - last.created_at) <= SAME_COMPARISON
        ):
            groups[-1].append(run)
        else:
            groups.append([run])
    return [[r.id for r in group] for group in reversed(groups) if len(group) > 1]


def pick_runs(page: PromptPage, ids: list[int]) -> list[tuple[PromptVersion, PromptRun]]:
    """The chosen runs of this prompt, in the order asked, for columns side by side."""
    if not ids:
        raise BadCommand("Choose the runs to compare.")
    if len(ids) > MOST_COLUMNS:
        raise BadCommand(f"Compare at most {MOST_COLUMNS} runs at once.")
    found = {run.id: (version, run) for version, run in page.runs}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise BadCommand(f"{page.name} has no run #{', #'.join(missing)}.")
    return [found[i] for i in dict.fromkeys(ids)]


def parse_run_ids(text: str) -> list[int]:
    """`12,13,14` -> [12, 13, 14]."""
    words = [w.strip().lstrip("#") for w in text.split(",") if w.strip()]
    if not all(w.isdigit() and len(w) < 16 for w in words):
        raise BadCommand(f"{text!r} is not a list of run numbers like 12,13.")
    return [int(w) for w in words]
