"""Dedupe state: SQLite in the data directory for one process, or Faust tables shared through Kafka."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson

from streams.alerting.health import FeedHealth
from streams.ingest.websub import Subscription

if TYPE_CHECKING:
    import faust

#: The SQLite file's name inside the data directory.
STATE_FILE = "state.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_items (url TEXT PRIMARY KEY, feed_url TEXT NOT NULL, seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feed_validators (feed_url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT);
CREATE TABLE IF NOT EXISTS fetched_items (url TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS articles (canonical_url TEXT PRIMARY KEY, text_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS articles_by_hash ON articles (text_hash);
CREATE TABLE IF NOT EXISTS deliveries (delivery_id TEXT PRIMARY KEY, delivered_at TEXT NOT NULL, ref TEXT);
CREATE TABLE IF NOT EXISTS outbox (
    delivery_id TEXT PRIMARY KEY, destination TEXT NOT NULL, record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS throttles (key TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS held (digest TEXT NOT NULL, due REAL NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS story_bands (band TEXT PRIMARY KEY, story_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS story_signatures (story_id TEXT PRIMARY KEY, signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stories (
    story_id TEXT PRIMARY KEY, first_alert TEXT NOT NULL, watches TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (alert_id TEXT PRIMARY KEY, url TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feed_health (feed_url TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS websub (
    feed_url TEXT PRIMARY KEY, hub TEXT NOT NULL, topic TEXT NOT NULL, expires REAL NOT NULL
);
"""


class Story(NamedTuple):
    """A story that has alerted: its first alert's id, and every watch its alerts have named."""

    first_alert: str
    watches: tuple[str, ...]

    def packed(self) -> str:
        return " ".join([self.first_alert, *self.watches])

    @classmethod
    def unpacked(cls, value: str) -> Story:
        first, *watches = value.split()
        return cls(first, tuple(watches))


class Queued(NamedTuple):
    """A delivery in the outbox, kept until delivered (the embedded broker forgets its topics)."""

    delivery_id: str
    destination: str
    record: bytes


class FetchLog(Protocol):
    """The fetcher's: which items' pages are already on wirewatch.articles.raw (by item URL)."""

    def item_fetched(self, url: str) -> bool: ...
    def record_item_fetched(self, url: str) -> None: ...


class ArticleIndex(Protocol):
    """The deduper's: articles published, by canonical URL and by text hash."""

    def duplicate_of(self, canonical_url: str, text_hash: str) -> str | None: ...
    def record_article(self, canonical_url: str, text_hash: str) -> None: ...


class StoryIndex(Protocol):
    """Stories: the deduper's LSH bands and signatures of each story, the alerter's story that alerted."""

    def story_candidates(self, bands: list[str]) -> list[str]: ...
    def story_signature(self, story_id: str) -> str | None: ...
    def record_story_member(self, story_id: str, bands: list[str], signature: str) -> None: ...
    def story(self, story_id: str) -> Story | None: ...
    def record_story(self, story: str, alerted: Story) -> None: ...


class AlertLog(Protocol):
    """The alerter's: alert ids already raised."""

    def has_alert(self, alert_id: str) -> bool: ...
    def record_alert(self, alert_id: str, url: str, created_at: str) -> None: ...


class DeliveryLog(Protocol):
    """The deliverer's: deliveries done (with what the destination called the message), and the outbox."""

    def delivered(self, delivery_id: str) -> bool: ...
    def record_delivered(self, delivery_id: str, delivered_at: str, ref: str | None = None) -> None: ...
    def delivery_ref(self, delivery_id: str) -> str | None: ...
    def queue_delivery(self, delivery_id: str, destination: str, record: bytes) -> None: ...
    def pending_deliveries(self) -> list[Queued]: ...


class Throttles(Protocol):
    """The deliverer's throttle windows, and the deliveries held for each digest."""

    def throttled_until(self, key: str) -> float | None: ...
    def throttle(self, key: str, until: float) -> None: ...
    def hold(self, digest: str, due: float, record: bytes) -> None: ...
    def take_held(self, digest: str) -> list[bytes]: ...
    def held_due(self) -> list[tuple[str, float]]: ...


class Dedupe(FetchLog, ArticleIndex, StoryIndex, AlertLog, DeliveryLog, Throttles, Protocol):
    """Every stage's state, what a runtime holds: each stage asks by its stream's key."""


class PendingStories:
    """The deduper's writes of one batch over its state: read back at once within the batch, written to
    the state only by `flush`, once the broker has the batch's articles."""

    def __init__(self, base: Dedupe) -> None:
        self.base = base
        self._urls: set[str] = set()
        self._hashes: dict[str, str] = {}
        self._bands: dict[str, str] = {}
        self._signatures: dict[str, str] = {}
        self._articles: list[tuple[str, str]] = []
        self._members: list[tuple[str, list[str], str]] = []

    def duplicate_of(self, canonical_url: str, text_hash: str) -> str | None:
        if canonical_url in self._urls:
            return _why_duplicate(canonical_url, canonical_url)
        if text_hash in self._hashes:
            return _why_duplicate(canonical_url, self._hashes[text_hash])
        return self.base.duplicate_of(canonical_url, text_hash)

    def record_article(self, canonical_url: str, text_hash: str) -> None:
        self._urls.add(canonical_url)
        self._hashes.setdefault(text_hash, canonical_url)
        self._articles.append((canonical_url, text_hash))

    def story_candidates(self, bands: list[str]) -> list[str]:
        pending = [self._bands[b] for b in bands if b in self._bands]
        return list(dict.fromkeys([*self.base.story_candidates(bands), *pending]))

    def story_signature(self, story_id: str) -> str | None:
        return self._signatures.get(story_id) or self.base.story_signature(story_id)

    def record_story_member(self, story_id: str, bands: list[str], signature: str) -> None:
        for band in bands:
            self._bands.setdefault(band, story_id)
        self._signatures.setdefault(story_id, signature)
        self._members.append((story_id, bands, signature))

    def flush(self) -> None:
        for url, text_hash in self._articles:
            self.base.record_article(url, text_hash)
        for story_id, bands, signature in self._members:
            self.base.record_story_member(story_id, bands, signature)


def _health_from(blob: object) -> FeedHealth:
    data = orjson.loads(blob if isinstance(blob, bytes) else str(blob))
    data["item_times"] = tuple(data.get("item_times") or ())
    return FeedHealth(**data)


def _why_duplicate(canonical_url: str, earlier_url: str) -> str:
    return "same canonical URL" if earlier_url == canonical_url else f"same text as {earlier_url}"


class StateStore:
    """A small SQLite file: items seen, feed validators, items fetched, articles cleaned, alerts raised.

    The poller's part (items seen, validators) is a per-process cache in every mode; the rest is the
    dedupe state when the process runs alone on the embedded broker.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One connection shared by the event loop's thread; the lock guards the rare call from elsewhere.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, *args: object) -> tuple[object, ...] | None:
        with self._lock:
            row: tuple[object, ...] | None = self._db.execute(sql, args).fetchone()
            return row

    def _write(self, sql: str, *args: object) -> None:
        with self._lock:
            self._db.execute(sql, args)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Several statements as one commit: all or none of them, and one WAL write instead of many."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def unseen(self, urls: list[str]) -> list[str]:
        """The urls not yet recorded as seen, in the order given."""
        return [u for u in urls if self._one("SELECT 1 FROM seen_items WHERE url = ?", u) is None]

    def mark_seen(self, items: list[tuple[str, str, str]]) -> None:
        """Record (url, feed URL, seen at) of each item, in one commit."""
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO seen_items VALUES (?, ?, ?)", items)

    def validators(self, feed_url: str) -> tuple[str | None, str | None]:
        row = self._one("SELECT etag, last_modified FROM feed_validators WHERE feed_url = ?", feed_url)
        if row is None:
            return None, None
        return (str(row[0]) if row[0] else None, str(row[1]) if row[1] else None)

    def set_validators(self, feed_url: str, etag: str | None, last_modified: str | None) -> None:
        self._write("INSERT OR REPLACE INTO feed_validators VALUES (?, ?, ?)", feed_url, etag, last_modified)

    def feed_health(self, feed_url: str) -> FeedHealth:
        row = self._one("SELECT record FROM feed_health WHERE feed_url = ?", feed_url)
        return _health_from(row[0]) if row else FeedHealth(feed_url)

    def set_feed_health(self, health: FeedHealth) -> None:
        record = orjson.dumps(dataclasses.asdict(health))
        self._write("INSERT OR REPLACE INTO feed_health VALUES (?, ?)", health.feed_url, record)

    def all_feed_health(self) -> list[FeedHealth]:
        with self._lock:
            rows = self._db.execute("SELECT record FROM feed_health ORDER BY feed_url").fetchall()
        return [_health_from(row[0]) for row in rows]

    def subscriptions(self) -> list[Subscription]:
        """This worker's WebSub subscriptions (see streams/ingest/websub.py)."""
        with self._lock:
            rows = self._db.execute("SELECT feed_url, hub, topic, expires FROM websub").fetchall()
        return [Subscription(str(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def set_subscription(self, sub: Subscription) -> None:
        self._write(
            "INSERT OR REPLACE INTO websub VALUES (?, ?, ?, ?)", sub.feed_url, sub.hub, sub.topic, sub.expires
        )

    def drop_subscription(self, feed_url: str) -> None:
        self._write("DELETE FROM websub WHERE feed_url = ?", feed_url)

    def item_fetched(self, url: str) -> bool:
        return self._one("SELECT 1 FROM fetched_items WHERE url = ?", url) is not None

    def record_item_fetched(self, url: str) -> None:
        self._write("INSERT OR IGNORE INTO fetched_items VALUES (?)", url)

    def duplicate_of(self, canonical_url: str, text_hash: str) -> str | None:
        """Why an article is an exact duplicate of one already published, or None when it is new."""
        row = self._one(
            "SELECT canonical_url FROM articles WHERE canonical_url = ? OR text_hash = ? LIMIT 1",
            canonical_url,
            text_hash,
        )
        return None if row is None else _why_duplicate(canonical_url, str(row[0]))

    def record_article(self, canonical_url: str, text_hash: str) -> None:
        self._write("INSERT OR IGNORE INTO articles VALUES (?, ?)", canonical_url, text_hash)

    def has_alert(self, alert_id: str) -> bool:
        return self._one("SELECT 1 FROM alerts WHERE alert_id = ?", alert_id) is not None

    def record_alert(self, alert_id: str, url: str, created_at: str) -> None:
        self._write("INSERT OR IGNORE INTO alerts VALUES (?, ?, ?)", alert_id, url, created_at)

    def delivered(self, delivery_id: str) -> bool:
        return self._one("SELECT 1 FROM deliveries WHERE delivery_id = ?", delivery_id) is not None

    def record_delivered(self, delivery_id: str, delivered_at: str, ref: str | None = None) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?)", (delivery_id, delivered_at, ref))
            db.execute("DELETE FROM outbox WHERE delivery_id = ?", (delivery_id,))

    def delivery_ref(self, delivery_id: str) -> str | None:
        """What the destination called the message (a Slack ts), to thread replies under it."""
        row = self._one("SELECT ref FROM deliveries WHERE delivery_id = ?", delivery_id)
        return None if row is None or row[0] is None else str(row[0])

    def queue_delivery(self, delivery_id: str, destination: str, record: bytes) -> None:
        """Kept until delivered: the embedded broker's deliveries topic does not outlive the process."""
        self._write("INSERT OR IGNORE INTO outbox VALUES (?, ?, ?)", delivery_id, destination, record)

    def throttled_until(self, key: str) -> float | None:
        row = self._one("SELECT until FROM throttles WHERE key = ?", key)
        return None if row is None else float(str(row[0]))

    def throttle(self, key: str, until: float) -> None:
        self._write("INSERT OR REPLACE INTO throttles VALUES (?, ?)", key, until)

    def hold(self, digest: str, due: float, record: bytes) -> None:
        self._write("INSERT INTO held VALUES (?, ?, ?)", digest, due, record)

    def take_held(self, digest: str) -> list[bytes]:
        """The records held for a digest, removed from the store (the digest is being sent)."""
        with self._transaction() as db:
            rows = db.execute("SELECT record FROM held WHERE digest = ? ORDER BY rowid", (digest,)).fetchall()
            db.execute("DELETE FROM held WHERE digest = ?", (digest,))
        return [bytes(r[0]) for r in rows]

    def held_due(self) -> list[tuple[str, float]]:
        """Each digest with held records, and when its window closes."""
        with self._lock:
            rows = self._db.execute("SELECT digest, MIN(due) FROM held GROUP BY digest").fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]

    def story_candidates(self, bands: list[str]) -> list[str]:
        # One query for all bands (32 lookups were a third of the deduper's time), ordered as the bands.
        marks = ", ".join("?" * len(bands))
        with self._lock:
            rows = self._db.execute(f"SELECT band, story_id FROM story_bands WHERE band IN ({marks})", bands)
            found = {str(band): str(story) for band, story in rows.fetchall()}
        return list(dict.fromkeys(found[b] for b in bands if b in found))

    def story_signature(self, story_id: str) -> str | None:
        row = self._one("SELECT signature FROM story_signatures WHERE story_id = ?", story_id)
        return None if row is None else str(row[0])

    def record_story_member(self, story_id: str, bands: list[str], signature: str) -> None:
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO story_bands VALUES (?, ?)", [(b, story_id) for b in bands])
            db.execute("INSERT OR IGNORE INTO story_signatures VALUES (?, ?)", (story_id, signature))

    def story(self, story_id: str) -> Story | None:
        """The story's first alert id and the watches its alerts have named, once it has alerted."""
        row = self._one("SELECT first_alert, watches FROM stories WHERE story_id = ?", story_id)
        return None if row is None else Story(str(row[0]), tuple(str(row[1]).split()))

    def record_story(self, story: str, alerted: Story) -> None:
        watches = " ".join(alerted.watches)
        self._write("INSERT OR REPLACE INTO stories VALUES (?, ?, ?)", story, alerted.first_alert, watches)

    def pending_deliveries(self) -> list[Queued]:
        """Every delivery queued and not yet delivered, in the order queued."""
        with self._lock:
            rows = self._db.execute(
                "SELECT delivery_id, destination, record FROM outbox ORDER BY rowid"
            ).fetchall()
        return [Queued(str(r[0]), str(r[1]), bytes(r[2])) for r in rows]


#: Faust table names; each one's changelog is the compacted topic "<app id>-<name>-changelog".
FETCHED_TABLE = "fetched-items"
ARTICLES_TABLE = "articles"
ALERTS_TABLE = "alerts"
DELIVERIES_TABLE = "deliveries"
STORIES_TABLE = "stories"
THROTTLES_TABLE = "throttles"


class _Keys:
    """The entries of one Faust table whose keys start with a prefix: two or more kinds of entry share
    a table (and its changelog topic) where they share the partition that owns them."""

    def __init__(self, table: Any, prefix: str) -> None:
        self._table, self._prefix = table, prefix

    def get(self, key: str) -> str | None:
        value = self._table.get(self._prefix + key)
        return None if value is None else str(value)

    def __contains__(self, key: str) -> bool:
        return self._prefix + key in self._table

    def __setitem__(self, key: str, value: str) -> None:
        self._table[self._prefix + key] = value

    def setdefault(self, key: str, value: str) -> None:
        if key not in self:
            self[key] = value

    def items(self) -> list[tuple[str, str]]:
        n = len(self._prefix)
        return [(str(k)[n:], str(v)) for k, v in list(self._table.items()) if str(k).startswith(self._prefix)]


class _Held(NamedTuple):
    """The deliveries held for one digest, and when its window closes (a table value, as JSON)."""

    due: float | None
    records: tuple[str, ...]

    @classmethod
    def unpacked(cls, value: str | None) -> _Held:
        data = orjson.loads(value) if value else {}
        return cls(data.get("due"), tuple(data.get("records") or ()))

    def packed(self) -> str:
        return orjson.dumps({"due": self.due, "records": list(self.records)}).decode()


class TableState:
    """Dedupe state in Faust tables: every write also goes to a compacted changelog topic, so a worker
    that takes over a partition (after a rebalance, a crash or a restart elsewhere) gets its state back.

    Each table is read and written only while handling a record of the partition that owns the key: the
    fetcher by item URL, the deduper on its single partition, the alerter by story (articles are keyed by
    story from the deduper on, and an article's URL, hence its alert id, belongs to one story), the
    deliverer by destination (delivery ids name it). That is what makes a table lookup authoritative
    across workers. The values are strings, as the changelogs have always held them.
    """

    def __init__(self, app: faust.App, partitions: int, dedupe_partitions: int) -> None:
        def table(name: str, n: int, help_: str) -> Any:
            return app.Table(name, partitions=n, key_type=str, value_type=str, help=help_)

        self.fetched = table(FETCHED_TABLE, partitions, "item URL -> when its page was fetched")
        # The deduper's, on its single partition: articles by URL and by text hash, stories' bands and
        # signatures.
        self.articles = table(
            ARTICLES_TABLE, dedupe_partitions, "url:/hash: -> first canonical URL; band:/sig: -> story"
        )
        self._by_url, self._by_hash = _Keys(self.articles, "url:"), _Keys(self.articles, "hash:")
        self._bands, self._signatures = _Keys(self.articles, "band:"), _Keys(self.articles, "sig:")
        self.alerts = table(ALERTS_TABLE, partitions, "alert id -> article URL")
        self.deliveries = table(DELIVERIES_TABLE, partitions, "delivery id -> when it was delivered")
        self.stories = table(STORIES_TABLE, partitions, "story id -> first alert id and watches named")
        # Apart from the deliveries, which grow with every alert: the digest timer scans this one. Both
        # are written while handling a record of the deliveries topic, partitioned by destination.
        self.throttles = table(THROTTLES_TABLE, partitions, "thr:/held: -> window end / held deliveries")
        self._windows, self._held = _Keys(self.throttles, "thr:"), _Keys(self.throttles, "held:")

    def tables(self) -> list[Any]:
        return [self.fetched, self.articles, self.alerts, self.deliveries, self.stories, self.throttles]

    def item_fetched(self, url: str) -> bool:
        return url in self.fetched

    def record_item_fetched(self, url: str) -> None:
        self.fetched[url] = "1"

    def duplicate_of(self, canonical_url: str, text_hash: str) -> str | None:
        earlier = self._by_url.get(canonical_url) or self._by_hash.get(text_hash)
        return None if earlier is None else _why_duplicate(canonical_url, earlier)

    def record_article(self, canonical_url: str, text_hash: str) -> None:
        self._by_url[canonical_url] = canonical_url
        self._by_hash.setdefault(text_hash, canonical_url)

    def has_alert(self, alert_id: str) -> bool:
        return alert_id in self.alerts

    def record_alert(self, alert_id: str, url: str, created_at: str) -> None:
        self.alerts[alert_id] = url

    def delivered(self, delivery_id: str) -> bool:
        return delivery_id in self.deliveries

    def record_delivered(self, delivery_id: str, delivered_at: str, ref: str | None = None) -> None:
        self.deliveries[delivery_id] = " ".join([delivered_at, *([ref] if ref else [])])

    def delivery_ref(self, delivery_id: str) -> str | None:
        value = self.deliveries.get(delivery_id)
        parts = str(value).split() if value else []
        return parts[1] if len(parts) > 1 else None

    def queue_delivery(self, delivery_id: str, destination: str, record: bytes) -> None:
        # Nothing to do: the record itself on the deliveries topic stays until its offset is committed.
        pass

    def pending_deliveries(self) -> list[Queued]:
        return []

    def story_candidates(self, bands: list[str]) -> list[str]:
        found = (self._bands.get(band) for band in bands)
        return list(dict.fromkeys(story for story in found if story))

    def story_signature(self, story_id: str) -> str | None:
        return self._signatures.get(story_id)

    def record_story_member(self, story_id: str, bands: list[str], signature: str) -> None:
        for band in bands:
            self._bands.setdefault(band, story_id)
        self._signatures.setdefault(story_id, signature)

    def story(self, story_id: str) -> Story | None:
        value = self.stories.get(story_id)
        return None if value is None else Story.unpacked(str(value))

    def record_story(self, story: str, alerted: Story) -> None:
        self.stories[story] = alerted.packed()

    def throttled_until(self, key: str) -> float | None:
        value = self._windows.get(key)
        return None if value is None else float(value)

    def throttle(self, key: str, until: float) -> None:
        self._windows[key] = repr(until)

    def hold(self, digest: str, due: float, record: bytes) -> None:
        held = _Held.unpacked(self._held.get(digest))
        self._held[digest] = _Held(held.due or due, (*held.records, record.decode())).packed()

    def take_held(self, digest: str) -> list[bytes]:
        held = _Held.unpacked(self._held.get(digest))
        if held.records:
            self._held[digest] = ""
        return [r.encode() for r in held.records]

    def held_due(self) -> list[tuple[str, float]]:
        return [
            (digest, float(held.due))
            for digest, value in self._held.items()
            if value and (held := _Held.unpacked(value)).due is not None
        ]
