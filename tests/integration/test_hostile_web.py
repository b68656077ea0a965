"""A hostile site on the embedded broker: every trap ends as its documented dead letter, the good news alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from streams.kafka.topics import DEADLETTER, FEEDS_HEALTH
from streams.names.watchlist import load_watchlist
from streams.pipeline.runner import run_pipeline
from streams.records import Alert
from streams.settings import Settings
from streams.site import Site, render_page, serve_loopback
from tests.integration.kafka_read import read_topic
from tests.synthetic import report
from tests.unit.test_fetch import BOMB, _drip
from tests.unit.test_hostile_input import (
    BILLION_LAUGHS,
    deep_nesting_page,
    external_entity_feed,
    huge_table_page,
    pathological_author_feed,
)

pytestmark = pytest.mark.integration

WATCHLIST = """watches:
  - {id: sirte, kind: location, name: Sirte}
  - {id: khalifa-haftar, kind: actor, name: Khalifa Haftar, aliases: [Haftar]}
"""
#: Item path -> (stage, reason class) of the dead letter it must end as.
TRAPS = {
    "/to-metadata": ("fetcher", "blocked_address"),
    "/drip": ("fetcher", "timeout"),
    "/bomb": ("fetcher", "too_large"),
    "/binary": ("fetcher", "not_html"),
    "/private/plans": ("fetcher", "robots_disallowed"),
    "/table": ("cleaner", "timeout"),
    "/huge-table": ("fetcher", "too_large"),
    "/deep": ("cleaner", "extraction_failed"),
}
BAD_FEEDS = {
    "/laughs.xml": "bad_feed",
    "/xxe.xml": "bad_feed",
    "/slow.xml": "timeout",
}


PRIVATE_LINK = "http://10.0.0.5/admin"  # a private address straight in the feed


def _rss(links: list[str]) -> bytes:
    items = "".join(
        f"<item><title>Item {i}</title><link>{link}</link><pubDate>Mon, 0{1 + i % 9} Jun 2020 08:00:00 GMT</pubDate>"
        "</item>"
        for i, link in enumerate(links)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Hostile Desk</title>{items}</channel></rss>'.encode()


@pytest.fixture
async def hostile_site() -> AsyncIterator[tuple[str, list[str]]]:
    good = [report(i, "Sirte", 300) for i in range(2)]
    site = Site("Hostile Desk", "Most read", [], good)
    hits: list[str] = []
    routes: dict[str, tuple[int, str, bytes, dict[str, str]]] = {}
    app = web.Application()

    async def serve(request: web.Request) -> web.StreamResponse:
        hits.append(request.path)
        if request.path == "/drip":
            return await _drip(request)
        if request.path not in routes:
            raise web.HTTPNotFound()
        status, kind, body, headers = routes[request.path]
        return web.Response(status=status, body=body, headers={"Content-Type": kind, **headers})

    app.router.add_get("/{tail:.*}", serve)
    runner, base = await serve_loopback(app)
    html = "text/html; charset=utf-8"
    for page in good:
        routes[f"/news/{page.slug}.html"] = (200, html, render_page(site, page, base).encode(), {})
    links = [f"{base}/news/{p.slug}.html" for p in good] + [base + path for path in TRAPS]
    links.append(PRIVATE_LINK)
    routes["/feed.xml"] = (200, "application/rss+xml", _rss(links), {})
    routes["/robots.txt"] = (200, "text/plain", b"User-agent: *\nDisallow: /private/\n", {})
    routes["/to-metadata"] = (302, html, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    routes["/bomb"] = (200, html, BOMB, {"Content-Encoding": "gzip"})
    routes["/binary"] = (200, "application/octet-stream", b"\x00\x01" * 1000, {})
    routes["/private/plans"] = (200, html, b"<html><p>Haftar</p></html>", {})
    # A table just under the record limit takes seconds to extract; five times as many rows are too many.
    routes["/table"] = (200, html, huge_table_page(28_000).encode(), {})
    routes["/huge-table"] = (200, html, huge_table_page().encode(), {})
    routes["/deep"] = (200, html, deep_nesting_page().encode(), {})
    routes["/laughs.xml"] = (200, "application/rss+xml", BILLION_LAUGHS, {})
    routes["/xxe.xml"] = (200, "application/rss+xml", external_entity_feed(base + "/secret"), {})
    routes["/slow.xml"] = (200, "application/rss+xml", pathological_author_feed(16_000), {})
    routes["/secret"] = (200, "text/plain", b"root:x:0:0", {})
    yield base, hits
    await runner.cleanup()


async def test_traps_end_as_dead_letters_and_good_news_alerts(
    embedded_broker: str, unique_settings: Settings, hostile_site: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, hits = hostile_site
    (tmp_path / "watchlist.yaml").write_text(WATCHLIST)
    settings = unique_settings.replace(
        broker=embedded_broker,
        total_timeout=3.0,
        extract_timeout=1.0,
        feed_parse_timeout=2.0,
        feed_failures_alert=1,
    )
    alerts: list[Alert] = []

    async def sink(alert: Alert) -> None:
        alerts.append(alert)

    result = await run_pipeline(
        settings,
        feeds=[base + "/feed.xml", *(base + path for path in BAD_FEEDS)],
        watches=load_watchlist(tmp_path / "watchlist.yaml"),
        once=True,
        sinks=[sink],
        once_timeout=120,
    )
    assert not result.pending
    dead = {
        str(v["key"]).removeprefix(base): (v["stage"], v["error_class"])
        for _, v in await read_topic(embedded_broker, settings.topic_prefix + DEADLETTER)
    }
    expected = {path: stage_class for path, stage_class in TRAPS.items()}
    expected[PRIVATE_LINK] = ("fetcher", "blocked_address")
    expected.update({path: ("poller", reason) for path, reason in BAD_FEEDS.items()})
    assert dead == expected
    # The good reports went through and alerted, each once.
    articles = sorted(a.url.removeprefix(base) for a in alerts if a.kind == "article")
    assert articles == ["/news/report-0.html", "/news/report-1.html"]
    # Nothing a feed pointed at inside the network was opened, and the disallowed page was never asked for.
    assert "/secret" not in hits and "/private/plans" not in hits
    # Each failing feed has a health record saying why, and (at a threshold of one) a health alert.
    health = {
        str(k).removeprefix(base): v
        for k, v in await read_topic(embedded_broker, settings.topic_prefix + FEEDS_HEALTH)
    }
    assert (
        health["/feed.xml"]["consecutive_failures"] == 0
        and health["/feed.xml"]["items_seen"] == len(TRAPS) + 3
    )
    for path, reason in BAD_FEEDS.items():
        assert health[path]["consecutive_failures"] == 1
        assert health[path]["last_error_class"] == reason
        assert health[path]["alerted"] == "failing"
    failing = sorted(a.url.removeprefix(base) for a in alerts if a.kind == "feed_failing")
    assert failing == sorted(BAD_FEEDS)
