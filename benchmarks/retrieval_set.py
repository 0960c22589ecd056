# ruff: noqa: E501  (data: one fact and its question per line read best unwrapped)
"""The memory-quality retrieval set: a few hundred team messages in five channels, and questions that
ask for 25 of them in other words (paraphrases: few of the answer's own words), plus questions nothing
answers. Written by hand for benchmarks/memory_quality.py; deterministic."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """A message someone will look for, and the question they will ask for it."""

    channel: str
    text: str
    question: str


FACTS = [
    # engineering
    Fact("eng", "The staging database credentials are rotated on the first Monday of each month; Marta runs the script.",
         "Who changes the pre-production DB passwords, and how often?"),
    Fact("eng", "We pinned the HTTP client to 2.3 because 2.4 broke streaming uploads in the importer.",
         "Why are we stuck on an older version of the request library?"),
    Fact("eng", "Flaky CI: the payments integration suite times out when the sandbox is slow, rerun it before blaming your change.",
         "The checkout tests failed on my pull request for no reason, what should I do?"),
    Fact("eng", "Feature flags live in the config service now; the old YAML file in the repo is ignored since March.",
         "Where do I switch a toggle on for a release these days?"),
    Fact("eng", "The nightly export job moved from cron on box-7 to the Kubernetes scheduler, logs are in the batch namespace.",
         "Where can I find the output of the overnight data dump?"),
    # operations
    Fact("ops", "The deploy freeze for the Zephyr launch starts Thursday at noon; Priya owns the rollback plan.",
         "When can we no longer ship before the big release, and who reverts if it goes wrong?"),
    Fact("ops", "Pager rotation swaps on Tuesdays at 10:00; if you trade a shift, update the schedule yourself.",
         "What day does on-call change hands?"),
    Fact("ops", "The disk on the log server filled up last night; we now keep 14 days of logs instead of 30.",
         "Why did we shorten how long we retain logs?"),
    Fact("ops", "TLS certificates for the public API renew automatically, but the partner VPN one is manual and expires in June.",
         "Which security certificate do we have to renew by hand?"),
    Fact("ops", "Backups are restored into a scratch cluster every Friday to prove they work; last restore took 41 minutes.",
         "Do we ever test that our snapshots can actually be recovered?"),
    # design
    Fact("design", "The new brand colour is a deep teal, #0F5C63; the orange is only for warnings from now on.",
         "What is our main shade after the rebrand?"),
    Fact("design", "User interviews showed people miss the export button because it hides in the overflow menu.",
         "What did the research sessions say about downloading reports?"),
    Fact("design", "Icons come from the shared Figma library; please don't paste SVGs from random websites.",
         "Where should I get pictograms for the mockups?"),
    Fact("design", "Dark mode ships in two steps: the dashboard first, the settings pages in the following sprint.",
         "Is the night theme coming everywhere at once?"),
    Fact("design", "Minimum tap target is 44 by 44 points on mobile; the audit found twelve buttons that are smaller.",
         "How big must touchable controls be on phones?"),
    # sales
    Fact("sales", "Acme renewed for three years at a 12 percent discount, signed by their CFO on Friday.",
         "Did our biggest anvil customer extend the contract, and on what terms?"),
    Fact("sales", "Enterprise trials are 30 days; anything longer needs approval from Jonas.",
         "Can I give a prospect a longer evaluation period?"),
    Fact("sales", "The pricing page change lifted demo requests by about a fifth in the first two weeks.",
         "Did the new plans layout on the website bring more leads?"),
    Fact("sales", "Quotes above 50k go through legal review, which takes about three working days.",
         "How long does a large deal wait for the lawyers?"),
    Fact("sales", "The Berlin trade fair booth is booked: hall 4, stand 112, from 14 to 16 May.",
         "Where exactly will we be at the German expo?"),
    # office
    Fact("office", "The office is closed on 24 December; the heating is turned down over the holidays.",
         "Can I come in to work on Christmas Eve?"),
    Fact("office", "Parking permits for the new garage are handed out by reception, bring your licence plate number.",
         "How do I get a spot for my car in the new building?"),
    Fact("office", "The third-floor coffee machine is broken again; the technician comes Wednesday.",
         "When will the espresso maker upstairs be fixed?"),
    Fact("office", "Expense reports must be filed within 60 days, with receipts photographed in the app.",
         "What is the deadline for claiming back money I spent on a trip?"),
    Fact("office", "Team lunch is on the company every last Friday of the month, at the Thai place around the corner.",
         "Is there a free meal for staff at some point each month?"),
]  # fmt: skip

# Questions no message answers: their best score is what "nothing related" looks like.
UNANSWERED = [
    "What is a good recipe for banana bread?",
    "Who won the chess tournament last weekend?",
    "How tall is the highest mountain in Africa?",
    "Which bird migrates the farthest every year?",
    "What is the plot of the latest detective novel everyone is reading?",
    "How do I repot an orchid without killing it?",
    "What time does the ferry to the island leave?",
    "Is it going to snow in the mountains this weekend?",
    "Who painted the ceiling of the famous chapel in Rome?",
    "How many strings does a classical guitar have?",
    "What should I feed a rescued hedgehog?",
    "Which football club has won the most titles?",
    "How long should I boil an egg for a runny yolk?",
    "What is the capital of Mongolia?",
    "Where can I learn to sail on a lake?",
    "How do volcanoes form underwater?",
    "What is the best way to learn the violin as an adult?",
    "Which planet has the most moons?",
    "How do I get rid of aphids on roses?",
    "What language is spoken in Patagonia?",
]

# Filler: everyday messages of each channel, near the facts' topics without answering their questions.
_FILLER = {
    "eng": (
        ["Ana", "Ben", "Chen", "Dara", "Eli"],
        ["reviewed", "merged", "reverted", "rebased", "benchmarked", "refactored", "documented", "profiled"],
        [
            "the search indexer",
            "the billing service",
            "the login page",
            "the mobile SDK",
            "the metrics pipeline",
            "the email sender",
            "the admin console",
            "the rate limiter",
            "the webhook worker",
            "the report builder",
        ],
        ["this morning", "before lunch", "yesterday", "after standup", "late last night", "during the sprint review"],
        [
            "looks good to me",
            "needs another test",
            "cut latency by a bit",
            "still has a memory leak",
            "is blocked on review",
            "is ready for QA",
            "broke the linter",
            "needs a migration first",
        ],
    ),
    "ops": (
        ["Femi", "Gus", "Hana", "Ivo", "Jade"],
        ["restarted", "scaled up", "patched", "drained", "monitored", "upgraded", "checked", "resized"],
        [
            "the load balancer",
            "the message queue",
            "the cache nodes",
            "the DNS records",
            "the build agents",
            "the object storage",
            "the VPN gateway",
            "the monitoring stack",
            "the edge proxies",
            "the worker pool",
        ],
        ["at 03:00", "over the weekend", "during the maintenance window", "this afternoon", "right after the alert"],
        [
            "and error rates are back to normal",
            "and latency dropped",
            "without downtime",
            "and it is stable now",
            "but we should watch it",
            "and the dashboards are green",
            "after a short blip",
            "per the runbook",
        ],
    ),
    "design": (
        ["Kai", "Lena", "Milo", "Nora", "Omar"],
        ["sketched", "prototyped", "polished", "tested", "reworked", "presented", "annotated", "simplified"],
        [
            "the onboarding flow",
            "the pricing table",
            "the empty states",
            "the navigation bar",
            "the search results",
            "the error messages",
            "the invoice template",
            "the profile page",
            "the notification centre",
            "the charts",
        ],
        ["for the review", "in the workshop", "with two customers", "for the next sprint", "after feedback"],
        [
            "and it reads much better",
            "but spacing is off",
            "with fewer steps",
            "and the copy is shorter",
            "with larger type",
            "and added alt text",
            "but needs a second pass",
            "and handed it to engineering",
        ],
    ),
    "sales": (
        ["Pia", "Quinn", "Raj", "Sol", "Tara"],
        ["called", "emailed", "met", "demoed to", "followed up with", "sent a proposal to", "onboarded", "visited"],
        [
            "a logistics startup",
            "a regional bank",
            "a university",
            "a hospital group",
            "a retail chain",
            "a software agency",
            "a city council",
            "an airline",
            "a insurance broker",
            "a game studio",
        ],
        ["today", "this week", "on Monday", "after the webinar", "at the conference"],
        [
            "and they want a second meeting",
            "but the budget is frozen",
            "and they asked about SSO",
            "and the champion is keen",
            "but legal is slow",
            "and we sent references",
            "and they compare us with two others",
            "and it looks promising",
        ],
    ),
    "office": (
        ["Uma", "Vik", "Wen", "Xena", "Yosef"],
        ["booked", "cleaned", "moved", "ordered", "fixed", "rearranged", "decorated", "restocked"],
        [
            "the big meeting room",
            "the kitchen shelves",
            "the standing desks",
            "the printer paper",
            "the plants",
            "the lockers",
            "the quiet room",
            "the whiteboards",
            "the phone booths",
            "the bike racks",
        ],
        ["for next week", "this morning", "before the visitors came", "on Friday", "after the move"],
        [
            "so please keep it tidy",
            "thanks to the volunteers",
            "and there is cake left",
            "as voted in the survey",
            "to make more room",
            "because people asked",
            "and labels are on everything",
            "for the new joiners",
        ],
    ),
}
FILLER_PER_CHANNEL = 55
THREADS_PER_CHANNEL = 3


def filler(seed: int = 18) -> list[tuple[str, str]]:
    """(channel, text) of the everyday messages, FILLER_PER_CHANNEL per channel, deterministic."""
    rng = random.Random(seed)
    out = []
    for channel, (people, verbs, things, whens, outcomes) in _FILLER.items():
        for _ in range(FILLER_PER_CHANNEL):
            words = (rng.choice(people), rng.choice(verbs), rng.choice(things), rng.choice(whens), rng.choice(outcomes))
            out.append((channel, "{} {} {} {} {}.".format(*words)))
    return out


def conversations(seed: int = 18) -> list[tuple[str, str, list[str]]]:
    """(channel, thread, texts in order): each channel's messages spread over its threads, facts among them."""
    rng = random.Random(seed)
    by_thread: dict[tuple[str, str], list[str]] = {}
    for channel, text in filler(seed) + [(f.channel, f.text) for f in FACTS]:
        thread = f"{channel}-t{rng.randrange(THREADS_PER_CHANNEL)}"
        by_thread.setdefault((channel, thread), []).append(text)
    for texts in by_thread.values():
        rng.shuffle(texts)
    return [(channel, thread, texts) for (channel, thread), texts in sorted(by_thread.items())]
