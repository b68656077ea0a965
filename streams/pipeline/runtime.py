"""The Faust app of one wirewatch process and the resources its agents share."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

import aiohttp
import faust
from faust.types import EventT, Message, StreamT, TopicT

from streams import metrics
from streams.alerting.deliver import RetryPolicy
from streams.alerting.routes import Routing
from streams.alerting.senders import Pacer, delivery_policy
from streams.ingest.feeds import FeedSpec
from streams.ingest.fetch import HostGate, Limits, SafeClient
from streams.ingest.netguard import AddressPolicy, parse_allowed
from streams.ingest.robots import Robots
from streams.ingest.websub import WebSub, master_secret
from streams.kafka.broker import TopicSpec
from streams.kafka.faust_patches import WireApp, handling
from streams.kafka.state import STATE_FILE, Dedupe, StateStore, TableState
from streams.kafka.topics import COMPACTED, RECORD_TYPES, Topics, declare_topics, partitions_of
from streams.names.gazetteer import resolve_apart
from streams.names.match import Matcher, VariantMatcher
from streams.names.watchlist import Watch
from streams.pipeline import cpuproc
from streams.pipeline.progress import Finished, Progress
from streams.pipeline.topology import load_agents_package
from streams.reasons import ReasonClass
from streams.records import Alert, DeadLetter, Delivery, WireRecord, utcnow
from streams.settings import Settings

log = logging.getLogger("wirewatch")
P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound=WireRecord)

AlertSink = Callable[[Alert], Awaitable[None]]


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
    #: WebSub subscriptions and the callback's checks, when websub_callback is set.
    websub: WebSub | None = None
    #: The feeds' own settings from a YAML feed list, by URL.
    feed_specs: dict[str, FeedSpec] = field(default_factory=dict)
    _web: SafeClient | None = None
    _feed_webs: dict[str, SafeClient] = field(default_factory=dict)
    _http: aiohttp.ClientSession | None = None
    _robots: Robots | None = None
    _slots: cpuproc.Slots | None = None
    #: Set when an agent dies of an error its own guard could not turn into a dead letter.
    failure: BaseException | None = None
    failed: asyncio.Event = field(default_factory=asyncio.Event)

    _pacers: dict[str, Pacer] = field(default_factory=dict)
    #: The stage that reads each topic (full name), for dead letters of records it cannot decode.
    _stages: dict[str, str] = field(default_factory=dict)

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
    def web(self, feed_url: str | None = None) -> SafeClient:
        """The guarded client every download of a feed, page or robots.txt goes through: one of its own
        for a feed (and its pages) that a YAML feed list gives a proxy or networks of its own."""
        s = self.settings
        if self._web is None:
            gate = HostGate(concurrency=s.host_concurrency, delay=s.host_delay)
            self._web = SafeClient(AddressPolicy(parse_allowed(s.allow_networks)), gate, s.user_agent)
        spec = self.feed_specs.get(feed_url or "")
        if spec is None or not (spec.proxy or spec.allow_networks):
            return self._web
        client = self._feed_webs.get(spec.url)
        if client is None:
            policy = AddressPolicy(parse_allowed((*s.allow_networks, *spec.allow_networks)))
            client = SafeClient(policy, self._web.gate, s.user_agent, proxy=spec.proxy)
            self._feed_webs[spec.url] = client
        return client

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
            self._slots = cpuproc.Slots(s.cpu_workers, s.spacy_model, s.matmul, self.matcher)
        return self._slots

    async def warm_up(self) -> None:
        """Start the CPU processes and load the model in each before any record arrives."""
        await self.slots.warm()

    async def run_cpu(
        self,
        limit: float,
        what: str,
        crash_class: ReasonClass,
        fn: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """fn in a CPU process, away from the event loop; WorkFailed past `limit` seconds or on a crash."""
        return await self.slots.run_within(limit, what, crash_class, functools.partial(fn, *args, **kwargs))

    async def close(self) -> None:
        for client in [*([self._web] if self._web else []), *self._feed_webs.values()]:
            await client.close()
        if self._http is not None:
            await self._http.close()
        if self._slots is not None:
            self._slots.shutdown()
            self._slots = None
        self.state.close()

    # --- what agents call -------------------------------------------------------------------------
    async def send(self, topic: TopicT, key: str, value: WireRecord) -> None:
        """Publish and wait for the broker's acknowledgement before the caller records anything."""
        await self.send_many(topic, [(key, value)])

    async def send_many(self, topic: TopicT, records: Sequence[tuple[str, WireRecord]]) -> None:
        """Publish all, then wait for every acknowledgement: the producer puts records sent while a request
        is in flight into the next one, where awaiting each in turn sent one request per record."""
        futures = [await topic.send(key=key, value=value) for key, value in records]
        await asyncio.gather(*futures)

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
        metrics.DEAD_LETTERS.labels(stage, metrics.reason_label(error_class)).inc()
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
                event = stream.current_event
                outcome = "dead-lettered"
                item = _item_of(value, key)
                try:
                    async with self.guard(stage, key(value), item):
                        outcome = await handler(self, value)
                except Exception as exc:
                    self._agent_died(stage, exc)
                    raise
                self._settle(stage, item, outcome, event.message if event is not None else None)
                # Yielding the outcome lets Faust's test context wait until a record is fully handled.
                yield outcome

        self._stages[topic.get_topic_name()] = stage
        self.app.agent(topic, name=f"wirewatch.{stage}", concurrency=concurrency)(run)

    #: The most records a batched stage takes at once, and how long it waits for more once one is there.
    BATCH_RECORDS = 200
    BATCH_WAIT = 0.01

    def batch_agent(
        self,
        topic: TopicT,
        stage: str,
        handler: Callable[[Runtime, list[R]], Awaitable[list[str]]],
        key: Callable[[R], str],
    ) -> None:
        """Attach an agent of one copy that hands the records that arrived together to handler as a list.

        The handler dead-letters a record it cannot handle itself (with `guard`); a failure of the batch as
        a whole (publishing its output) makes each of its records a dead letter.
        """

        async def run(stream: StreamT[R]) -> AsyncIterator[str]:
            # take_events is Faust's Stream's, not in its StreamT interface.
            faust_stream = cast(faust.Stream[R], stream)
            async for taken in faust_stream.take_events(self.BATCH_RECORDS, self.BATCH_WAIT):
                for events in _by_partition(taken):
                    # A Faust table writes to the changelog partition of the record being handled: the
                    # batch's, as its records share one.
                    with handling(events[-1]):
                        settled = await self._handle_batch(stage, handler, key, events)
                    for event, item, outcome in settled:
                        self._settle(stage, item, outcome, event.message)
                        yield outcome

        self._stages[topic.get_topic_name()] = stage
        self.app.agent(topic, name=f"wirewatch.{stage}")(run)

    async def _handle_batch(
        self,
        stage: str,
        handler: Callable[[Runtime, list[R]], Awaitable[list[str]]],
        key: Callable[[R], str],
        events: list[EventT[Any]],
    ) -> list[tuple[EventT[Any], str, str]]:
        """Each event of a batch with its item and outcome (all dead letters when the batch failed as one)."""
        values = [cast(R, event.value) for event in events]
        items = [_item_of(value, key) for value in values]
        try:
            try:
                outcomes = await handler(self, values)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error_class, reason = _failure(exc)
                for value, item in zip(values, items, strict=True):
                    await self.dead_letter(stage, key(value), error_class, reason, item)
                outcomes = ["dead-lettered"] * len(values)
        except Exception as exc:
            self._agent_died(stage, exc)
            raise
        return list(zip(events, items, outcomes, strict=True))

    def _settle(self, stage: str, item: str, outcome: str, message: Message | None) -> None:
        """A record handled or dead-lettered: counted, its item finished if this was its last stage, and
        only now may the commit move past it."""
        if isinstance(outcome, Finished):
            self.progress.finish(item, str(outcome))
        metrics.RECORDS.labels(stage, metrics.outcome_label(outcome)).inc()
        if message is not None:
            self._handled(message)

    async def undecodable(self, exc: Exception, message: Message) -> None:
        """A record on a stage's topic that is not JSON of the topic's record type: a dead letter, and
        handled, so the commit moves past it and the agent never sees it."""
        stage = self._stages.get(message.topic, message.topic)
        key = message.key.decode("utf-8", "replace") if isinstance(message.key, bytes) else str(message.key)
        reason = f"{message.topic}[{message.partition}] offset {message.offset}: {exc}"
        try:
            await self.dead_letter(stage, key, "undecodable", reason)
        except Exception as err:
            self._agent_died(stage, err)
            return
        self._handled(message)

    def _handled(self, message: Message) -> None:
        """Tell the offset guard an agent is done with this record (none under Faust's test context)."""
        guard = getattr(self.app, "offset_guard", None)
        if guard is not None:
            guard.handled(message)

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
            await self.dead_letter(stage, key, *_failure(exc), item_url)


def _item_of(value: R, key: Callable[[R], str]) -> str:
    """The item a record is about, for progress and dead letters: its feed item's URL, else its key."""
    return getattr(value, "item_url", None) or key(value)


def _by_partition(events: Sequence[EventT[Any]]) -> list[list[EventT[Any]]]:
    """A batch's events grouped by the partition they came from, each group in its order."""
    groups: dict[object, list[EventT[Any]]] = {}
    for event in events:
        groups.setdefault(event.message.tp, []).append(event)
    return list(groups.values())


def _failure(exc: Exception) -> tuple[str, str]:
    """A dead letter's error class (the exception's reason class, else its type) and reason."""
    return str(getattr(exc, "reason_class", None) or type(exc).__name__), str(exc) or type(exc).__name__


def _robots_agent(user_agent: str) -> str:
    """The product token robots.txt rules name: "wirewatch" of "wirewatch/0.1 (+https://...)"."""
    return user_agent.split("/", 1)[0].split()[0] if user_agent.strip() else "*"


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
            app.lags = app.offset_guard.lags()
            metrics.LAG.clear()  # partitions given up in a rebalance are no longer this worker's
            for tp, lag in app.lags.items():
                metrics.LAG.labels(tp.topic, str(tp.partition)).set(lag)

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
    feed_specs: Sequence[FeedSpec] = (),
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
        matcher=VariantMatcher(watches, resolve_apart(watches) if settings.gazetteer else None),
        feeds=feeds,
        once=once,
        feed_specs={spec.url: spec for spec in feed_specs},
    )
    app.on_undecodable = runtime.undecodable  # type: ignore[attr-defined]
    if settings.websub_callback:
        master = master_secret(settings.websub_secret, settings.data_dir)
        runtime.websub = WebSub(settings.websub_callback, master, feeds, state, runtime.web())
    attach_agents(runtime, agents)
    return runtime
