"""Alerts: a stable id per article, a snippet around the first mention, and a readable rendering."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from streams.records import Alert, WatchMatch, iso_utc, utcnow

if TYPE_CHECKING:
    from streams.alerting.health import HealthChange


def alert_id(canonical_url: str) -> str:
    """The same article always yields the same id, so a reprocessed article never alerts twice."""
    return hashlib.sha256(f"wirewatch-alert\x00{canonical_url}".encode()).hexdigest()[:32]


def snippet(text: str, start: int, end: int, width: int) -> str:
    """About `width` characters on each side of text[start:end], cut at word boundaries, on one line."""
    left = max(0, start - width)
    right = min(len(text), end + width)
    if left > 0:
        space = text.find(" ", left, start)
        left = space + 1 if space != -1 else left
    if right < len(text):
        space = text.rfind(" ", end, right)
        right = space if space != -1 else right
    body = " ".join(text[left:right].split())
    return ("…" if left > 0 else "") + body + ("…" if right < len(text) else "")


def body_snippet(text: str, title: str, ordered: Sequence[WatchMatch], width: int) -> str:
    """The snippet around the first mention in the body: the cleaner's text starts with the headline,
    which the alert shows already, so the snippet never repeats it."""
    first_line = text.split("\n", 1)[0]
    skip = len(first_line) + 1 if title and " ".join(first_line.split()) == " ".join(title.split()) else 0
    body = text[skip:]
    first = next((m for m in ordered if m.start >= skip), None)
    if first is None:  # named in the headline only: the body's opening
        return snippet(body, 0, 0, 2 * width)
    return snippet(body, first.start - skip, first.end - skip, width)


def build_alert(
    *,
    url: str,
    item_url: str,
    title: str,
    source: str,
    published: str | None,
    text: str,
    matches: Sequence[WatchMatch],
    snippet_chars: int,
    story_id: str = "",
    language: str | None = None,
) -> Alert | None:
    """One alert for an article that names at least one watch; None when it names none."""
    if not matches:
        return None
    ordered = sorted(matches, key=lambda m: (m.start, m.end))
    watches = list(dict.fromkeys(m.watch for m in ordered))
    return Alert(
        alert_id=alert_id(url),
        url=url,
        item_url=item_url,
        title=title,
        source=source,
        published=published,
        watches=watches,
        matches=list(ordered),
        snippet=body_snippet(text, title, ordered, snippet_chars),
        created_at=utcnow(),
        story_id=story_id,
        language=language or "",
    )


def health_alert(feed_url: str, source: str, change: HealthChange, now: float) -> Alert:
    """A feed health alert: one id per feed, kind and moment, so a re-sent one is recognised."""
    at = iso_utc(now)
    return Alert(
        alert_id=hashlib.sha256(
            f"wirewatch-health\x00{feed_url}\x00{change.kind}\x00{at}".encode()
        ).hexdigest()[:32],
        url=feed_url,
        item_url=feed_url,
        title=change.title,
        source=source or feed_url,
        published=None,
        watches=[],
        matches=[],
        snippet=change.message,
        created_at=at,
        kind=change.kind,
    )


def render_text(alert: Alert) -> str:
    """A few readable lines for a terminal."""
    if alert.kind != "article":
        return (
            f"FEED {alert.kind.upper()} · {alert.source}\n  {alert.title}\n  {alert.url}\n  {alert.snippet}"
        )
    forms: dict[str, list[str]] = {}
    for m in alert.matches:
        seen = forms.setdefault(m.watch, [])
        if m.text not in seen:
            seen.append(m.text)
    named = "; ".join(f"{w} ({', '.join(forms.get(w, []))})" for w in alert.watches)
    when = f" · {alert.published}" if alert.published else ""
    return (
        f"ALERT {alert.alert_id[:12]} · {alert.source}{when}\n"
        f"  {alert.title}\n"
        f"  {alert.url}\n"
        f"  watches: {named}\n"
        f"  “{alert.snippet}”"
    )


class _Article(Protocol):
    url: str
    item_url: str
    title: str
    source: str
    published: str | None
    text: str
    story_id: str
    language: str | None


def alert_for(article: _Article, matches: Sequence[WatchMatch], snippet_chars: int) -> Alert | None:
    """build_alert for a clean or extracted article record."""
    return build_alert(
        url=article.url,
        item_url=article.item_url,
        title=article.title,
        source=article.source,
        published=article.published,
        text=article.text,
        matches=matches,
        snippet_chars=snippet_chars,
        story_id=article.story_id,
        language=article.language,
    )
