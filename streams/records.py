"""The record types carried on every wirewatch topic, serialized as plain JSON with orjson."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, TypeVar

import faust
import orjson
from faust.serializers import codecs


class OrjsonCodec(codecs.Codec):
    """JSON through orjson: about ten times faster than the stdlib on our records."""

    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_nested)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


def _nested(obj: Any) -> Any:
    # Faust hands the codec the top record as a dict but leaves nested records as objects.
    if isinstance(obj, faust.Record):
        return obj.to_representation()
    raise TypeError(f"cannot serialize {type(obj).__name__}")


codecs.register("orjson", OrjsonCodec())


def iso_utc(timestamp: float) -> str:
    """A Unix time as an ISO 8601 string in UTC, to the second, as every record stores times."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def utcnow() -> str:
    """The current time, as iso_utc writes it."""
    return iso_utc(time.time())


class WireRecord(faust.Record, abstract=True, serializer="orjson", include_metadata=False):
    """Base of every topic record: no Faust metadata in the JSON, so the schemas are the contract."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.asdict()
        for name, value in data.items():
            if isinstance(value, list):
                data[name] = [v.to_json() if isinstance(v, WireRecord) else v for v in value]
        return data


R = TypeVar("R", bound=WireRecord)


def carried(before: object, record: type[R], **fields: Any) -> R:
    """The next stage's record: what it shares by name with the record before (the item URL, the feed,
    the source...), then the fields given."""
    shared = {n: getattr(before, n) for n in record._options.fields if n not in fields and hasattr(before, n)}
    return record(**shared, **fields)


class FeedItem(WireRecord):
    """A new item from a feed, keyed by its canonical article URL."""

    url: str
    feed_url: str
    source: str
    title: str
    published: str | None
    summary: str
    guid: str
    seen_at: str
    #: The language the feed declares, a hint only (records written before it decode with None).
    declared_language: str | None = None
    #: The feed's tags (a YAML feed list's, an OPML file's categories), for routes to choose by.
    tags: list[str] = []


class ArticleRecord(WireRecord, abstract=True):
    """The fields every article record starts with, from the download to the entities."""

    url: str
    item_url: str
    feed_url: str
    source: str
    title: str
    published: str | None


class RawArticle(ArticleRecord):
    """A downloaded article page."""

    status: int
    content_type: str
    html: str
    fetched_at: str
    #: The language the feed declares, a hint only (records written before it decode with None).
    declared_language: str | None = None
    tags: list[str] = []


class CleanArticle(ArticleRecord):
    """The main text of an article page, without navigation, sidebars or comments."""

    language: str | None
    text: str
    text_hash: str
    cleaned_at: str
    #: Set by the deduper: articles that are near-duplicates of one another share it.
    story_id: str = ""
    #: When its page was fetched (carried from wirewatch.articles.raw): the start of the alert latency.
    fetched_at: str = ""
    tags: list[str] = []


class Entity(WireRecord):
    """A named entity found by spaCy; offsets index the article text."""

    text: str
    label: str
    start: int
    end: int


def as_records(found: list[tuple[str, str, int, int]]) -> list[Entity]:
    """The (text, label, start, end) tuples NER returns from its CPU process, as records.

    Plain tuples cross the process boundary so the CPU processes never import Faust.
    """
    return [Entity(text=t, label=label, start=s, end=e) for t, label, s, e in found]


class WatchMatch(WireRecord):
    """A mention of a watched actor or location; offsets index the article text."""

    watch: str
    kind: str
    text: str
    start: int
    end: int
    how: str
    score: float


class ArticleEntities(ArticleRecord):
    """A clean article with its named entities and watchlist matches."""

    language: str | None
    text: str
    model: str
    entities: list[Entity]
    matches: list[WatchMatch]
    extracted_at: str
    story_id: str = ""
    fetched_at: str = ""
    tags: list[str] = []


class Alert(WireRecord):
    """One alert for one article that names at least one watch, keyed by its stable alert id."""

    alert_id: str
    url: str
    item_url: str
    title: str
    source: str
    published: str | None
    watches: list[str]
    matches: list[WatchMatch]
    snippet: str
    created_at: str
    story_id: str = ""
    #: "article" for reporting that names watches; "feed_failing", "feed_silent" or "feed_recovered" for
    #: a feed health alert, whose url is the feed's and whose watches and matches are empty.
    kind: str = "article"
    #: The article's language (ISO 639-1), empty when it is not known and for a feed health alert.
    language: str = ""


class Delivery(WireRecord):
    """What remains to be handed to one destination, keyed by the destination's name."""

    delivery_id: str
    destination: str
    route: str
    alerts: list[Alert]
    queued_at: str
    #: The alert id of the story's first alert, when this one is a later alert of the same story.
    reply_to: str = ""


class DeadLetter(WireRecord):
    """What a stage could not handle, with the reason, so nothing is lost silently."""

    stage: str
    key: str
    error_class: str
    reason: str
    item_url: str | None
    failed_at: str


class FeedHealthRecord(WireRecord):
    """One feed's health after a poll, keyed by the feed URL (a compacted topic: the latest per feed)."""

    feed_url: str
    source: str
    polls: int
    last_success: str | None
    last_error: str | None
    last_error_class: str | None
    last_error_at: str | None
    consecutive_failures: int
    items_seen: int
    last_item_at: str | None
    median_interval_seconds: float | None
    alerted: str | None
