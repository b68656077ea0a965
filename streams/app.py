"""The Faust app of one wirewatch process and the resources its agents share."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import multiprocessing
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ParamSpec, TypeVar

import aiohttp
import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import StreamT, TopicT

from streams.records import Alert, DeadLetter, WireRecord, utcnow
from streams.settings import Settings
from streams.stages.fetch import Limits
from streams.stages.match import Matcher, VariantMatcher
from streams.stages.ner import warm
from streams.stages.watchlist import Watch
from streams.broker import TopicSpec
from streams.state import Dedupe, StateStore, TableState
from streams.topics import RECORD_TYPES, Topics, declare_topics, partitions_of

log = logging.getLogger("wirewatch")
P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound=WireRecord)

AlertSink = Callable[[Alert], Awaitable[None]]


class Progress:
    """Which feed items are still in flight, so `run --once` knows when everything has gone through."""

    def __init__(self) -> None:
        self.pending: set[str] = set()
        self.outcomes: dict[str, str] = {}
        self.polling_done = asyncio.Event()
        self._changed = asyncio.Event()

    def expect(self, key: str) -> None:
        if key not in self.outcomes:
            self.pending.add(key)

    def finish(self, key: str | None, outcome: str) -> None:
        if key is None:
            return
        self.pending.discard(key)
        self.outcomes.setdefault(key, outcome)
        self._changed.set()

    @property
    def idle(self) -> bool:
        return self.polling_done.is_set() and not self.pending

    async def wait_idle(self, timeout: float) -> bool:
        """True once polling is done and no item is in flight; False if the timeout passes first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.idle:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            waiters = [
                asyncio.ensure_future(self._changed.wait()),
                asyncio.ensure_future(self.polling_done.wait()),
            ]
            _, undone = await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            for waiter in undone:
                waiter.cancel()
        return True


def _spawn_pool(settings: Settings) -> ProcessPoolExecutor:
    # Spawned, not forked: the parent runs an event loop and Kafka client threads that must not be copied.
    return ProcessPoolExecutor(
        max_workers=settings.cpu_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=warm,
        initargs=(settings.spacy_model,),
    )


@dataclass
class Runtime:
    """Everything agents share: the app, its topics, state, HTTP session, CPU pool and progress."""

    settings: Settings
    app: faust.App
    topics: Topics
    #: The poller's cache of items seen and feed validators, and the dedupe state on the embedded broker.
    state: StateStore
    #: What the fetcher, deduper and alerter consult: `state` itself, or Faust tables shared via Kafka.
    dedupe: Dedupe
    watches: list[Watch]
    matcher: Matcher
    feeds: list[str]
    once: bool
    progress: Progress = field(default_factory=Progress)
    alert_sinks: list[AlertSink] = field(default_factory=list)
    _http: aiohttp.ClientSession | None = None
    _pool: ProcessPoolExecutor | None = None
    #: Set when an agent dies of an error its own guard could not turn into a dead letter.
    failure: BaseException | None = None
    failed: asyncio.Event = field(default_factory=asyncio.Event)

    tables: TableState | None = None

    def topic_specs(self) -> list[TopicSpec]:
        """Every topic this process reads or writes, table changelogs included, to create before start."""
        s = self.settings
        specs = [TopicSpec(s.topic_prefix + n, partitions_of(n, s.partitions)) for n in RECORD_TYPES]
        for table in self.tables.tables() if self.tables else []:
            specs.append(TopicSpec(table.changelog_topic.get_topic_name(), table.partitions, compacted=True))
        return specs

    # --- shared resources -------------------------------------------------------------------------
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                headers={"User-Agent": self.settings.user_agent},
                connector=aiohttp.TCPConnector(limit=32, limit_per_host=4),
            )
        return self._http

    def limits(self, max_bytes: int) -> Limits:
        s = self.settings
        return Limits(s.connect_timeout, s.read_timeout, s.total_timeout, max_bytes)

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = _spawn_pool(self.settings)
        return self._pool

    async def warm_up(self) -> None:
        """Start the CPU processes and load the model in each before any record arrives."""
        loop = asyncio.get_running_loop()
        pool = self.pool()
        await asyncio.gather(
            *(
                loop.run_in_executor(pool, warm, self.settings.spacy_model)
                for _ in range(self.settings.cpu_workers)
            )
        )

    async def run_cpu(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run fn in a CPU process, away from the event loop; a dead pool is replaced, not fatal."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool(), functools.partial(fn, *args, **kwargs))
        except BrokenProcessPool:
            broken, self._pool = self._pool, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            raise

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.state.close()

    # --- what agents call -------------------------------------------------------------------------
    async def send(self, topic: TopicT, key: str, value: WireRecord) -> None:
        """Publish and wait for the broker's acknowledgement before the caller records anything."""
        fut = await topic.send(key=key, value=value)
        await fut

    async def dead_letter(
        self, stage: str, key: str, error_class: str, reason: str, item_url: str | None = None
    ) -> None:
        log.warning("dead-letter from %s for %s: %s: %s", stage, key, error_class, reason)
        record = DeadLetter(
            stage=stage,
            key=key,
            error_class=error_class,
            reason=reason,
            item_url=item_url,
            failed_at=utcnow(),
        )
        await self.send(self.topics.deadletter, key, record)
        self.progress.finish(item_url, "deadletter")

    def stage_agent(
        self,
        topic: TopicT,
        stage: str,
        handler: Callable[[Runtime, R], Awaitable[str]],
        key: Callable[[R], str],
    ) -> None:
        """Attach an agent that runs handler on each record, dead-lettering whatever it raises."""

        async def run(stream: StreamT[R]) -> AsyncIterator[str]:
            async for value in stream:
                outcome = "dead-lettered"
                try:
                    async with self.guard(stage, key(value), getattr(value, "item_url", None) or key(value)):
                        outcome = await handler(self, value)
                except Exception as exc:
                    self._agent_died(stage, exc)
                    raise
                # Yielding the outcome lets Faust's test context wait until a record is fully handled.
                yield outcome

        self.app.agent(topic, name=f"wirewatch.{stage}")(run)

    def _agent_died(self, stage: str, exc: BaseException) -> None:
        # Even the dead-letter write failed: restarting the agent in place could skip the record, so the
        # process stops and exits non-zero, and its supervisor restarts it from the committed offsets.
        log.error("agent %s died: %s: %s", stage, type(exc).__name__, exc)
        if self.failure is None:
            self.failure = exc
        self.failed.set()

    @asynccontextmanager
    async def guard(self, stage: str, key: str, item_url: str | None) -> AsyncIterator[None]:
        """Turn any failure on one record into a dead-letter record, so the agent lives on."""
        try:
            yield
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            error_class = getattr(exc, "reason_class", None) or type(exc).__name__
            await self.dead_letter(stage, key, str(error_class), reason, item_url)


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
    init = Path(__file__).resolve().parent.parent / "agents" / "__init__.py"
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


class _IdempotentProducer(aiokafka_driver.Producer):
    # Faust asks aiokafka for idempotence only inside exactly-once transactions; we want it always.
    def _settings_extra(self) -> dict[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class _IdempotentTransport(aiokafka_driver.Transport):
    Producer = _IdempotentProducer


class WireApp(faust.App):
    """A Faust app whose Kafka producers are idempotent when asked to be."""

    idempotent = False

    def _new_transport(self) -> Any:
        if not self.idempotent:
            return super()._new_transport()
        return _IdempotentTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        if not self.idempotent:
            return super()._new_producer_transport()
        return _IdempotentTransport(self.conf.broker_producer, self)


def create_app(settings: Settings, broker_url: str, *, idempotent: bool = False) -> faust.App:
    """The Faust app, configured from settings at start (nothing is read at import)."""
    app = WireApp(
        settings.app_id,
        broker=broker_url,
        autodiscover=False,
        web_enabled=False,
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="orjson",
        # A worker that dies mid-stream hands its partitions and their tables to the others quickly.
        table_standby_replicas=1,
    )
    app.idempotent = idempotent
    return app


def build_runtime(
    settings: Settings,
    broker_url: str,
    *,
    feeds: list[str],
    watches: list[Watch],
    once: bool = False,
    agents: tuple[str, ...] | None = None,
    embedded_broker: bool = False,
    idempotent: bool = False,
) -> Runtime:
    """Create the app, declare its topics and tables and attach the agents (all of them unless named)."""
    attach_agents = load_agents_package().attach_agents

    app = create_app(settings, broker_url, idempotent=idempotent)
    topics = declare_topics(app, settings.topic_prefix, settings.partitions, settings.replication_factor)
    state = StateStore(settings.data_dir / "state.sqlite3")
    tables = None
    if settings.state_backend(embedded_broker) == "kafka":
        tables = TableState(app, settings.partitions, topics.articles_dedupe.partitions or 1)
    runtime = Runtime(
        settings=settings,
        app=app,
        topics=topics,
        state=state,
        dedupe=tables or state,
        tables=tables,
        watches=watches,
        matcher=VariantMatcher(watches),
        feeds=feeds,
        once=once,
    )
    attach_agents(runtime, agents)
    return runtime
