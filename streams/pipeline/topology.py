"""The pipeline declared once: each stage's input and output topics, key, handler and concurrency."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

from streams.kafka.topics import (
    ALERTS,
    ARTICLES_CLEAN,
    ARTICLES_DEDUPE,
    ARTICLES_ENTITIES,
    ARTICLES_RAW,
    DEADLETTER,
    DELIVERIES,
    FEED_ITEMS,
    FEEDS_HEALTH,
)

#: How many copies of a stage's agent take records at once: one, one per CPU process, or the fetch
#: concurrency setting (network-bound work).
Concurrency = Literal["one", "cpu", "fetch"]


@dataclass(frozen=True)
class Stage:
    """One stage: the agent module agents/<name>.py, whose `handle(runtime, record)` runs on each record of
    its input topic (and whose `start(runtime)`, when it has one, starts its timers)."""

    name: str
    #: The topic it reads; None for a stage driven by a timer (the poller).
    input: str | None
    #: The topics it writes (every stage may also write wirewatch.deadletter).
    outputs: tuple[str, ...]
    #: The field of the input record that names it in dead letters and progress (url, alert_id...).
    key: str
    concurrency: Concurrency
    #: Whether its work runs in the CPU processes (parsing, extraction, NER), away from the event loop.
    cpu_bound: bool
    #: What it does, in a few words.
    does: str
    #: What it reads or writes outside Kafka.
    reads: str = ""
    writes: str = ""
    #: Whether `handle` takes the records that arrived together as one list (and returns an outcome for
    #: each): a stage of one copy that records state after the broker has its output then waits for one
    #: acknowledgement per batch, not per record.
    batched: bool = False

    @property
    def handler(self) -> str | None:
        """The function each input record goes to (a stage without input only starts its timers)."""
        return f"agents.{self.name}:handle" if self.input else None


PIPELINE: tuple[Stage, ...] = (
    Stage(
        "poller",
        None,
        (FEED_ITEMS, FEEDS_HEALTH, ALERTS, DELIVERIES),
        "feed_url",
        "one",
        True,
        "polls each feed (on the group's leader): unseen items, feed health",
        reads="feeds",
    ),
    Stage("fetcher", FEED_ITEMS, (ARTICLES_RAW,), "url", "fetch", False, "downloads each item's page"),
    Stage("cleaner", ARTICLES_RAW, (ARTICLES_DEDUPE,), "item_url", "cpu", True, "extracts the main text"),
    Stage(
        "deduper",
        ARTICLES_DEDUPE,
        (ARTICLES_CLEAN,),
        "url",
        "one",
        False,
        "drops exact duplicates, gives each article its story",
        batched=True,
    ),
    Stage(
        "extractor",
        ARTICLES_CLEAN,
        (ARTICLES_ENTITIES,),
        "url",
        "cpu",
        True,
        "spaCy entities and watchlist matches",
    ),
    Stage(
        "alerter",
        ARTICLES_ENTITIES,
        (ALERTS, DELIVERIES),
        "url",
        "one",
        False,
        "one alert per story, queues its deliveries",
    ),
    Stage(
        "notifier",
        ALERTS,
        (),
        "alert_id",
        "one",
        False,
        "hands each alert to the terminal",
        writes="terminal",
    ),
    Stage(
        "deliverer",
        DELIVERIES,
        (DELIVERIES,),
        "delivery_id",
        "one",
        False,
        "sends with retries, throttles and digests",
        writes="Slack, email, webhooks",
    ),
)

STAGES: dict[str, Stage] = {stage.name: stage for stage in PIPELINE}


def topic_field(name: str) -> str:
    """The attribute of kafka.topics.Topics that holds a topic: feed_items for wirewatch.feed-items."""
    return name.removeprefix("wirewatch.").replace(".", "_").replace("-", "_")


def render_topology() -> str:
    """The pipeline as text: what each stage reads and writes, then how each runs."""
    flow = [
        (s.input or s.reads, s.name, ", ".join((*s.outputs, *([s.writes] if s.writes else []))))
        for s in PIPELINE
    ]
    flow.append(("every stage", "", f"{DEADLETTER} (stage, key, error class, reason)"))
    w0, w1 = max(len(r[0]) for r in flow), max(len(r[1]) for r in flow)
    lines = [f"{a:<{w0}} ─▶ {b:<{w1}} ─▶ {c}" if b else f"{a:<{w0}} ─▶ {c}" for a, b, c in flow]
    copies = {"one": "one", "cpu": "one per CPU process", "fetch": "fetch_concurrency"}
    table = [("stage", "keyed by", "copies", "CPU", "does")] + [
        (
            s.name,
            s.key,
            copies[s.concurrency] + (", batches" if s.batched else ""),
            "yes" if s.cpu_bound else "",
            s.does,
        )
        for s in PIPELINE
    ]
    widths = [max(len(r[k]) for r in table) for k in range(4)]
    lines.append("")
    lines += [
        ("  ".join(f"{c:<{w}}" for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]).rstrip()
        for r in table
    ]
    return "\n".join(lines) + "\n"


_OWN_AGENTS = "wirewatch_agents"


def load_agents_package() -> ModuleType:
    """This repository's `agents` package, even where openai-agents' top-level `agents` shadows it."""
    import agents

    if getattr(agents, "WIREWATCH_AGENTS", False):
        return agents
    if _OWN_AGENTS in sys.modules:
        return sys.modules[_OWN_AGENTS]
    # Another distribution's `agents` came first on sys.path. Load ours beside it under its own name,
    # leaving the other one untouched for whoever imported it.
    init = Path(__file__).resolve().parents[2] / "agents" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        _OWN_AGENTS, init, submodule_search_locations=[str(init.parent)]
    )
    if spec is None or spec.loader is None or not init.is_file():
        raise ImportError(
            f"the package 'agents' imported from {agents.__file__} is not wirewatch's "
            "(openai-agents installs one of that name); install wirewatch in a virtualenv of its own"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[_OWN_AGENTS] = module
    spec.loader.exec_module(module)
    return module
