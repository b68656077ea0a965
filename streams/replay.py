"""`wirewatch replay`: a watchlist run over the articles retained on wirewatch.articles.clean."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.alerting.alert import alert_for
from streams.alerting.deliver import DeliveryFailed, with_retries
from streams.alerting.routes import Routing, deliveries_for
from streams.alerting.senders import Pacer, deliver_once, delivery_policy
from streams.kafka.topics import ARTICLES_CLEAN
from streams.names.analysis import analyse_here
from streams.names.gazetteer import resolve_apart
from streams.names.match import VariantMatcher
from streams.names.watchlist import Watch
from streams.pipeline import cpuproc
from streams.records import Alert, CleanArticle
from streams.settings import Settings

log = logging.getLogger("wirewatch")

AlertOut = Callable[[Alert], Awaitable[None]]


class ReplayError(RuntimeError):
    """Replay cannot run as asked (no broker, a bad date, no such topic)."""


def parse_when(value: str) -> datetime:
    """A date or an ISO 8601 time, read as UTC when it names no zone."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ReplayError(f"not a date or ISO 8601 time: {value!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def retained_articles(
    broker: str, topic: str, since: datetime, until: datetime | None
) -> AsyncIterator[CleanArticle]:
    """The articles written to the topic from `since` to `until` (by record time), in order per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.removeprefix("kafka://"), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()  # a topic this client has not asked about yet
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ReplayError(f"topic {topic} does not exist on {broker}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
        live = []
        for tp in tps:
            found = starts.get(tp)
            if found is not None and found.offset < ends[tp]:
                consumer.seek(tp, found.offset)
                live.append(tp)
        start_ms = int(since.timestamp() * 1000)
        stop_ms = int(until.timestamp() * 1000) if until else None
        while live:
            batch = await consumer.getmany(*live, timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    # Checked here too: not every Kafka-compatible broker answers offsets-for-times exactly.
                    if record.timestamp >= start_ms and (stop_ms is None or record.timestamp <= stop_ms):
                        yield CleanArticle.from_data(orjson.loads(record.value))
            live = [tp for tp in live if await consumer.position(tp) < ends[tp]]
    finally:
        await consumer.stop()


async def replay(
    settings: Settings,
    watches: list[Watch],
    since: datetime,
    until: datetime | None,
    out: AlertOut,
    routing: Routing | None = None,
    on_article: Callable[[], object] | None = None,
) -> tuple[int, int]:
    """Match every retained article against the watchlist; (articles read, alerts raised)."""
    if settings.broker is None:
        raise ReplayError(
            "replay reads the topics a broker has kept: give --broker (the embedded one forgets)"
        )
    matcher = VariantMatcher(watches, resolve_apart(watches) if settings.gazetteer else None)
    slots = cpuproc.Slots(settings.cpu_workers, settings.spacy_model, settings.matmul, matcher)
    seen = alerted = 0
    session = aiohttp.ClientSession() if routing and routing.routes else None
    pacers: dict[str, Pacer] = {}
    try:
        topic = settings.topic_prefix + ARTICLES_CLEAN
        async for article in retained_articles(settings.broker, topic, since, until):
            seen += 1
            if on_article is not None:
                on_article()
            # As the live extractor does, `entities: candidates` included.
            model = settings.ner_model(article.language)
            what = f"entity recognition of {article.url}"
            job = functools.partial(analyse_here, article.text, model, settings.entities)
            try:
                _, matches = await slots.run_within(settings.ner_timeout, what, "ner_failed", job)
            except cpuproc.WorkFailed as exc:
                log.warning("replay skips %s: %s", article.url, exc)
                continue
            alert = alert_for(article, matches, settings.snippet_chars)
            if alert is None:
                continue
            alerted += 1
            await out(alert)
            if session is not None and routing is not None:
                await _deliver(settings, routing, article, alert, session, pacers)
    finally:
        slots.shutdown()
        if session is not None:
            await session.close()
    return seen, alerted


async def _deliver(
    settings: Settings,
    routing: Routing,
    article: CleanArticle,
    alert: Alert,
    session: aiohttp.ClientSession,
    pacers: dict[str, Pacer],
) -> None:
    """Hand a replayed alert to its routes' destinations directly (the live topics stay untouched)."""
    policy = delivery_policy(settings)
    for delivery in deliveries_for(routing, article, alert):
        dest = routing.destinations[delivery.destination]
        pacer = pacers.setdefault(dest.name, Pacer(1.0))
        try:
            await with_retries(functools.partial(deliver_once, dest, [alert], session, pacer), policy)
        except DeliveryFailed as exc:
            raise ReplayError(f"could not deliver to {dest.name}: {exc}") from exc
