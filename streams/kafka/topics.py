"""The wirewatch topics: declared once here, by name, key, record type and partition count."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import faust
from faust.types import Message, TopicT

from streams.records import (
    Alert,
    ArticleEntities,
    CleanArticle,
    DeadLetter,
    Delivery,
    FeedHealthRecord,
    FeedItem,
    RawArticle,
    WireRecord,
)

FEED_ITEMS: Final = "wirewatch.feed-items"
ARTICLES_RAW: Final = "wirewatch.articles.raw"
ARTICLES_DEDUPE: Final = "wirewatch.articles.dedupe"
ARTICLES_CLEAN: Final = "wirewatch.articles.clean"
ARTICLES_ENTITIES: Final = "wirewatch.articles.entities"
ALERTS: Final = "wirewatch.alerts"
DELIVERIES: Final = "wirewatch.deliveries"
DEADLETTER: Final = "wirewatch.deadletter"
FEEDS_HEALTH: Final = "wirewatch.feeds.health"

#: Topic name -> record type; the schema of each lives at schemas/<topic name>.json.
RECORD_TYPES: Final[dict[str, type[WireRecord]]] = {
    FEED_ITEMS: FeedItem,
    ARTICLES_RAW: RawArticle,
    ARTICLES_DEDUPE: CleanArticle,
    ARTICLES_CLEAN: CleanArticle,
    ARTICLES_ENTITIES: ArticleEntities,
    ALERTS: Alert,
    DELIVERIES: Delivery,
    DEADLETTER: DeadLetter,
    FEEDS_HEALTH: FeedHealthRecord,
}


#: One partition, so one consumer at a time sees every cleaned article: a duplicate may come from any
#: feed under any URL, and only a single point of decision can tell it is one. The work done there is a
#: table lookup per article; the CPU-heavy stages on either side keep all their partitions.
SINGLE_PARTITION: Final = frozenset({ARTICLES_DEDUPE})


#: Topics that keep only the latest record per key.
COMPACTED: Final = frozenset({FEEDS_HEALTH})


def partitions_of(name: str, partitions: int) -> int:
    """The partition count of a topic (by canonical name) when the others have `partitions`."""
    return 1 if name in SINGLE_PARTITION else partitions


@dataclass(frozen=True)
class Topics:
    """The declared topics of one app, under that app's topic prefix."""

    feed_items: TopicT
    articles_raw: TopicT
    articles_dedupe: TopicT
    articles_clean: TopicT
    articles_entities: TopicT
    alerts: TopicT
    deliveries: TopicT
    deadletter: TopicT
    feeds_health: TopicT


#: What a topic calls with a record it cannot decode: (the error, the record). Set on the app.
OnUndecodable = Callable[[Exception, Message], Awaitable[None]]


class WireTopic(faust.Topic):
    """A topic whose record that cannot be decoded goes to the app's `on_undecodable`, not into the stream.

    Faust throws the decode error into the agent's stream: the agent restarts without ever handling the
    record, so the offset guard would never commit past it and would read the partition again and again.
    """

    async def on_key_decode_error(self, exc: Exception, message: Message) -> None:
        await self._undecodable(exc, message)

    async def on_value_decode_error(self, exc: Exception, message: Message) -> None:
        await self._undecodable(exc, message)

    async def _undecodable(self, exc: Exception, message: Message) -> None:
        hook: OnUndecodable | None = getattr(self.app, "on_undecodable", None)
        if hook is None:
            await super().on_value_decode_error(exc, message)
        else:
            await hook(exc, message)


def declare_topics(app: faust.App, prefix: str, partitions: int, replicas: int) -> Topics:
    """Declare every topic on the app: string keys, JSON values of the topic's record type."""

    def topic(name: str) -> TopicT:
        return WireTopic(
            app,
            topics=[prefix + name],
            key_type=str,
            value_type=RECORD_TYPES[name],
            key_serializer="raw",
            value_serializer="orjson",
            partitions=partitions_of(name, partitions),
            replicas=replicas,
        )

    return Topics(
        feed_items=topic(FEED_ITEMS),
        articles_raw=topic(ARTICLES_RAW),
        articles_dedupe=topic(ARTICLES_DEDUPE),
        articles_clean=topic(ARTICLES_CLEAN),
        articles_entities=topic(ARTICLES_ENTITIES),
        alerts=topic(ALERTS),
        deliveries=topic(DELIVERIES),
        deadletter=topic(DEADLETTER),
        feeds_health=topic(FEEDS_HEALTH),
    )
