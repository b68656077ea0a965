"""Local state in the data directory, so a restart never re-alerts, even on the in-memory broker."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_items (url TEXT PRIMARY KEY, feed_url TEXT NOT NULL, seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feed_validators (feed_url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT);
CREATE TABLE IF NOT EXISTS articles (canonical_url TEXT PRIMARY KEY, text_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS articles_by_hash ON articles (text_hash);
CREATE TABLE IF NOT EXISTS alerts (alert_id TEXT PRIMARY KEY, url TEXT NOT NULL, created_at TEXT NOT NULL);
"""


class StateStore:
    """A small SQLite file: items seen, feed validators, articles cleaned, alerts raised."""

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

    def unseen(self, urls: list[str]) -> list[str]:
        """The urls not yet recorded as seen, in the order given."""
        return [u for u in urls if self._one("SELECT 1 FROM seen_items WHERE url = ?", u) is None]

    def mark_seen(self, url: str, feed_url: str, seen_at: str) -> None:
        self._write("INSERT OR IGNORE INTO seen_items VALUES (?, ?, ?)", url, feed_url, seen_at)

    def seen_count(self) -> int:
        row = self._one("SELECT COUNT(*) FROM seen_items")
        return int(str(row[0])) if row else 0

    def validators(self, feed_url: str) -> tuple[str | None, str | None]:
        row = self._one("SELECT etag, last_modified FROM feed_validators WHERE feed_url = ?", feed_url)
        if row is None:
            return None, None
        return (str(row[0]) if row[0] else None, str(row[1]) if row[1] else None)

    def set_validators(self, feed_url: str, etag: str | None, last_modified: str | None) -> None:
        self._write("INSERT OR REPLACE INTO feed_validators VALUES (?, ?, ?)", feed_url, etag, last_modified)

    def duplicate_of(self, canonical_url: str, text_hash: str) -> str | None:
        """Why an article is an exact duplicate of one already published, or None when it is new."""
        row = self._one(
            "SELECT canonical_url FROM articles WHERE canonical_url = ? OR text_hash = ? LIMIT 1",
            canonical_url,
            text_hash,
        )
        if row is None:
            return None
        return "same canonical URL" if row[0] == canonical_url else f"same text as {row[0]}"

    def record_article(self, canonical_url: str, text_hash: str) -> None:
        self._write("INSERT OR IGNORE INTO articles VALUES (?, ?)", canonical_url, text_hash)

    def has_alert(self, alert_id: str) -> bool:
        return self._one("SELECT 1 FROM alerts WHERE alert_id = ?", alert_id) is not None

    def record_alert(self, alert_id: str, url: str, created_at: str) -> None:
        self._write("INSERT OR IGNORE INTO alerts VALUES (?, ?, ?)", alert_id, url, created_at)
