"""The Faust app of one wirewatch process and the resources its agents share."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ParamSpec, TypeVar

import aiohttp
import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import StreamT, TopicT

from streams import cpuproc
from streams.broker import TopicSpec
from streams.records import Alert, DeadLetter, Delivery, WireRecord, utcnow
from streams.routes import Routing
from streams.senders import Pacer, delivery_policy
from streams.settings import Settings
from streams.stages.deliver import RetryPolicy
from streams.stages.fetch import HostGate, Limits, SafeClient
from streams.stages.match import Matcher, VariantMatcher
from streams.stages.netguard import AddressPolicy, parse_allowed
from streams.stages.robots import Robots
from streams.stages.watchlist import Watch
from streams.state import STATE_FILE, Dedupe, StateStore, TableState
from streams.topics import COMPACTED, RECORD_TYPES, Topics, declare_topics, partitions_of

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
    routing: Routing = field(default_factory=Routing)
    progress: Progress = field(default_factory=Progress)
    alert_sinks: list[AlertSink] = field(default_factory=list)
    _web: SafeClient | None = None
    _http: aiohttp.ClientSession | None = None
    _robots: Robots | None = None
    _slots: cpuproc.Slots | None = None
    #: Set when an agent dies of an error its own guard could not turn into a dead letter.
    failure: BaseException | None = None
    failed: asyncio.Event = field(default_factory=asyncio.Event)

    _pacers: dict[str, Pacer] = field(default_factory=dict)

    def pacer(self, destination: str) -> Pacer:
        """Slack takes at most one message a second per webhook or channel."""
        if destination not in self._pacers:
            self._pacers[destination] = Pacer(1.0)
        return self._pacers[destination]

    @property
    def retry_policy(self) -> RetryPolicy:
        return delivery_policy(self.settings)

    @property
    def cpu_concurrency(self) -> int:
        """Copies of each CPU-bound agent: one more than the pool has processes, so a record is always
        queued for the pool while its previous result is being published."""
        return self.settings.cpu_workers + 1

    def topic_specs(self) -> list[TopicSpec]:
        """Every topic this process reads or writes, table changelogs included, to create before start."""
        s = self.settings
        specs = [
            TopicSpec(s.topic_prefix + n, partitions_of(n, s.partitions), compacted=n in COMPACTED)
            for n in RECORD_TYPES
        ]
        for table in self.dedupe.tables() if isinstance(self.dedupe, TableState) else []:
            specs.append(TopicSpec(table.changelog_topic.get_topic_name(), table.partitions, compacted=True))
        return specs

    # --- shared resources -------------------------------------------------------------------------
    def web(self) -> SafeClient:
        """The guarded client every download of a feed, page or robots.txt goes through."""
        if self._web is None:
            s = self.settings
            gate = HostGate(concurrency=s.host_concurrency, delay=s.host_delay)
            policy = AddressPolicy(parse_allowed(s.allow_networks))
            self._web = SafeClient(policy, gate, s.user_agent)
        return self._web

    def http(self) -> aiohttp.ClientSession:
        """The session for Slack and webhooks: destinations the operator configured, not feeds' links."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                headers={"User-Agent": self.settings.user_agent},
                connector=aiohttp.TCPConnector(limit=32, limit_per_host=4),
            )
        return self._http

    def robots(self) -> Robots | None:
        """robots.txt rules for article pages, or None when the robots setting is off."""
        if not self.settings.robots:
            return None
        if self._robots is None:
            self._robots = Robots(self.web(), _robots_agent(self.settings.user_agent), self.limits(0))
        return self._robots

    def limits(self, max_bytes: int) -> Limits:
        s = self.settings
        return Limits(s.connect_timeout, s.read_timeout, s.total_timeout, max_bytes)

    @property
    def slots(self) -> cpuproc.Slots:
        if self._slots is None:
            s = self.settings
            self._slots = cpuproc.Slots(s.cpu_workers, s.spacy_model, s.matmul)
        return self._slots

    async def warm_up(self) -> None:
        """Start the CPU processes and load the model in each before any record arrives."""
        await self.slots.warm()

    async def run_cpu(
        self, limit: float, what: str, crash_class: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """fn in a CPU process, away from the event loop; WorkFailed past `limit` seconds or on a crash."""
        return await self.slots.run_within(limit, what, crash_class, functools.partial(fn, *args, **kwargs))

    async def close(self) -> None:
        if self._web is not None:
            await self._web.close()
        if self._http is not None:
            await self._http.close()
        if self._slots is not None:
            self._slots.shutdown()
            self._slots = None
        self.state.close()

    # --- what agents call -------------------------------------------------------------------------
    async def send(self, topic: TopicT, key: str, value: WireRecord) -> None:
        """Publish and wait for the broker's acknowledgement before the caller records anything."""
        fut = await topic.send(key=key, value=value)
        await fut

    async def publish_alert(self, alert: Alert, deliveries: list[Delivery]) -> None:
        """The alert on the alerts topic and one delivery per destination, queued in the outbox first."""
        # Expected before the alert is out, so `run --once` cannot see the item done and deliveries pending.
        for delivery in deliveries:
            self.progress.expect(delivery.delivery_id)
            self.dedupe.queue_delivery(delivery.delivery_id, delivery.destination, delivery.dumps())
        await self.send(self.topics.alerts, alert.alert_id, alert)
        for delivery in deliveries:
            await self.send(self.topics.deliveries, delivery.destination, delivery)

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
        concurrency: int = 1,
    ) -> None:
        """Attach an agent that runs handler on each record, dead-lettering whatever it raises.

        With concurrency above 1, that many copies of the agent take records from the same partitions;
        Faust commits an offset only once every record before it is done, so nothing is skipped.
        """

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

        self.app.agent(topic, name=f"wirewatch.{stage}", concurrency=concurrency)(run)

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


def _robots_agent(user_agent: str) -> str:
    """The product token robots.txt rules name: "wirewatch" of "wirewatch/0.1 (+https://...)"."""
    return user_agent.split("/", 1)[0].split()[0] if user_agent.strip() else "*"


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


class _ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust fixes the fetch wait at 1.5 s. The embedded broker holds a fetch that found nothing for the
        # whole wait even when records arrive meanwhile, so every hop of the pipeline cost up to 1.5 s
        # (measured with 30 articles at once on two workers: median download-to-alert 4.8 s, 1.9 s with
        # 50 ms; Apache Kafka answers a waiting fetch as soon as records arrive, and merely sees more
        # empty fetches with a short wait).
        consumer._fetch_max_wait_ms = int(getattr(self.app, "fetch_wait", 1.5) * 1000)
        return consumer


class _Consumer(aiokafka_driver.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(aiokafka_driver.Transport):
    Consumer = _Consumer


class _IdempotentTransport(_Transport):
    Producer = _IdempotentProducer


class _NoReadOffsets(dict[Any, Any]):
    """Stands in for Faust's per-partition "highest offset read" map, always empty.

    Faust uses that map to drop a message whose offset is below one already read and to count an offset
    jump as acknowledged. After a rebalance a prefetched message can arrive ahead of the ones re-read from
    the committed offset: Faust then counted the offsets in between as done, dropped them when they came,
    and committed them unprocessed (measured: articles lost when a worker was killed). Without the map
    every message is delivered; the price is a few records handled twice, which the dedupe state absorbs.
    """

    def __getitem__(self, key: Any) -> None:
        return None

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


class OffsetGuard:
    """Keeps Faust from committing past a record it never handled, and has such records read again.

    Faust's streams also skip, without handling them, records fetched under the consumer group's previous
    generation; the seek after a rebalance does not always bring them back. Faust's commit then moved past
    the hole whenever the partition had no committed offset yet. Here a commit waits for the hole, and a
    hole that no handler is working on for two checks in a row makes the partition re-read from it.
    """

    #: Seconds a partition may have records waiting beyond its committed offset while none arrives and
    #: none is being handled, before it is read again from the committed offset.
    STALL_SECONDS = 20.0

    def __init__(self, consumer: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.consumer = consumer
        self.clock = clock
        self.first_seen: dict[Any, int] = {}
        self.suspect: dict[Any, int] = {}
        self.last_message: dict[Any, float] = {}
        self._new_offset = consumer._new_offset
        self._callback = consumer.callback
        consumer._read_offset = _NoReadOffsets()
        consumer._new_offset = self.new_offset
        consumer.callback = self.on_message

    async def on_message(self, message: Any) -> None:
        self.first_seen.setdefault(message.tp, message.offset)
        self.last_message[message.tp] = self.clock()
        await self._callback(message)

    def base(self, tp: Any) -> int | None:
        """The first offset of the partition this consumer still owes: committed, or first read."""
        committed: int | None = self.consumer._committed_offset[tp]
        return committed if committed is not None else self.first_seen.get(tp)

    def hole(self, tp: Any) -> tuple[int, int] | None:
        acked = self.consumer._acked.get(tp)
        base = self.base(tp)
        if not acked or base is None or min(acked) <= base:
            return None
        return base, min(acked)

    def new_offset(self, tp: Any) -> int | None:
        if self.hole(tp) is not None:
            return None
        offset: int | None = self._new_offset(tp)
        return offset

    async def mend(self) -> None:
        """Re-read, from its first missing offset, a partition whose hole nothing is filling."""
        assigned = self.consumer.assignment()
        for tp in list(self.consumer._acked):
            hole = self.hole(tp)
            if hole is None or tp not in assigned:
                self.suspect.pop(tp, None)
                continue
            start, end = hole
            in_flight = any(
                m.tp == tp and start <= m.offset < end for m in list(self.consumer._unacked_messages)
            )
            if in_flight:
                self.suspect.pop(tp, None)
                continue
            if self.suspect.get(tp) != start:
                self.suspect[tp] = start  # seen once; re-read only if it is still there at the next check
                continue
            log.warning(
                "offsets %d-%d of %s were skipped by the stream; reading them again", start, end - 1, tp
            )
            self.suspect.pop(tp)
            # seek_wait, not seek: Faust's seek calls into aiokafka from this thread while the consumer
            # lives on a thread of its own, and a fetcher woken from the wrong thread may never wake
            # (seen once: a worker stopped consuming right after re-reading a hole this way).
            await self.consumer.seek_wait({tp: start})
        await self.restart_stalled(assigned)

    async def restart_stalled(self, assigned: set[Any]) -> None:
        """Read again, from its committed offset, a partition whose records wait but never come.

        Seen once in CI after a SIGKILL rebalance: the survivor idle, its partitions holding records
        beyond their committed offsets, nothing fetched and nothing in a handler. Holes are handled
        above; this is the same stall at a partition's tail, where no later record was handled.
        """
        now = self.clock()
        busy = {m.tp for m in list(self.consumer._unacked_messages)}
        for tp in assigned:
            # Only the agents' topics: table changelogs are read by Faust's recovery, not by streams.
            if not self.consumer.app.topics.acks_enabled_for(tp.topic):
                continue
            base = self.base(tp)
            if base is None or tp in busy:
                continue
            highwater = self.consumer.highwater(tp)
            if highwater is None or highwater <= base:
                continue
            quiet = now - self.last_message.get(tp, now)
            self.last_message.setdefault(tp, now)
            if quiet < self.STALL_SECONDS:
                continue
            log.warning(
                "%s has offsets %d-%d waiting and nothing arrived for %.0f s; reading it again\n%s",
                tp,
                base,
                highwater - 1,
                quiet,
                self.describe(),
            )
            self.last_message[tp] = now
            if tp in self.consumer._paused_partitions and not self.consumer.app.in_recovery:
                self.consumer.resume_partitions({tp})
            await self.consumer.seek_wait({tp: base})

    def describe(self) -> str:
        """Each assigned partition as this consumer sees it, for a stall report."""
        c = self.consumer
        active = c._active_partitions or set()
        return "\n".join(
            f"  {tp.topic}[{tp.partition}]: committed {c._committed_offset[tp]}, "
            f"highwater {c.highwater(tp)}, acked {len(c._acked.get(tp) or ())}, "
            f"active {tp in active}, paused {tp in c._paused_partitions}"
            for tp in sorted(c.assignment())
        )


class WireApp(faust.App):
    """A Faust app that never commits an offset it has not processed, with idempotent producers if asked."""

    idempotent = False
    fetch_wait = 1.5
    offset_guard: OffsetGuard | None = None

    def _new_consumer(self) -> Any:
        consumer: Any = super()._new_consumer()
        self.offset_guard = OffsetGuard(consumer)
        return consumer

    def _new_transport(self) -> Any:
        transport = _IdempotentTransport if self.idempotent else _Transport
        return transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        transport = _IdempotentTransport if self.idempotent else _Transport
        return transport(self.conf.broker_producer, self)


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
    app.fetch_wait = settings.fetch_wait

    @app.timer(interval=2.0, name="wirewatch.offset-guard")  # type: ignore[untyped-decorator]
    async def mend_offsets() -> None:
        if app.offset_guard is not None:
            await app.offset_guard.mend()

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
    routing: Routing | None = None,
) -> Runtime:
    """Create the app, declare its topics and tables and attach the agents (all of them unless named)."""
    attach_agents = load_agents_package().attach_agents

    app = create_app(settings, broker_url, idempotent=idempotent)
    topics = declare_topics(app, settings.topic_prefix, settings.partitions, settings.replication_factor)
    state = StateStore(settings.data_dir / STATE_FILE)
    tables = None
    if settings.state_backend(embedded_broker) == "kafka":
        tables = TableState(app, settings.partitions, topics.articles_dedupe.partitions or 1)
    runtime = Runtime(
        settings=settings,
        app=app,
        topics=topics,
        state=state,
        dedupe=tables or state,
        routing=routing or Routing(),
        watches=watches,
        matcher=VariantMatcher(watches),
        feeds=feeds,
        once=once,
    )
    attach_agents(runtime, agents)
    return runtime
