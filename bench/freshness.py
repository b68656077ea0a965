"""Publication-to-alert latency while feeds publish over time, by how each feed is read; poller CPU.

A loopback newsroom serves feeds that publish a new article every minute, every two minutes or every hour
(polled at their own pace), and feeds that publish every minute and push through a loopback WebSub hub.
The whole pipeline runs on the embedded broker in this process; every article names a watch, and the
time from its publication to its alert is taken per kind of feed. Then a poller-only worker reads 1,000
feeds, and its CPU is given per round and as a share of a core at the interval it reads them.

Run: python bench/freshness.py [--minutes 12], or python bench/pipeline.py --freshness 12
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from common import articles, watchlist_yaml
from pipeline import poller_cpu

from streams.hub import Hub
from streams.kafka.broker import EmbeddedBroker, free_port
from streams.names.watchlist import parse_watchlist
from streams.pipeline.runner import run_pipeline
from streams.records import Alert
from streams.settings import load_settings
from streams.site import Page, Site, render_page, serve_loopback

#: name, feeds of that kind, seconds between articles, pushed through WebSub
KINDS = [
    ("every minute, polled", 3, 60.0, False),
    ("every 2 minutes, polled", 3, 120.0, False),
    ("hourly, polled", 2, 3600.0, False),
    ("every minute, WebSub", 3, 60.0, True),
]


@dataclass
class Feed:
    name: str
    kind: str
    period: float
    push: bool
    items: list[tuple[str, float]] = field(default_factory=list)  # (slug, published at, epoch)


class Newsroom:
    """Feeds that publish on their own schedule, their articles, and the hub that pushes some of them."""

    def __init__(self, pool: list[Page]) -> None:
        self.pool = pool
        self.pages: dict[str, Page] = {}
        self.feeds: dict[str, Feed] = {}
        self.published: dict[str, tuple[str, float]] = {}  # article path -> (kind, published at)
        self.base = ""
        self.hub = Hub()
        self.site = Site("Bench Newsroom", "Most read", [], [])

    def add_feed(self, name: str, kind: str, period: float, push: bool, now: float) -> None:
        feed = self.feeds[name] = Feed(name, kind, period, push)
        # A history at the feed's pace, so its cadence is known from the first poll.
        for k in range(5, 0, -1):
            feed.items.append((self._page(), now - k * period))

    def _page(self) -> str:
        page = self.pool[len(self.pages) % len(self.pool)]
        slug = f"a{len(self.pages)}"
        self.pages[slug] = replace(page, slug=slug, title=f"{page.title} ({slug})")
        return slug

    def publish(self, name: str) -> None:
        feed = self.feeds[name]
        slug, now = self._page(), time.time()
        feed.items.append((slug, now))
        self.published[f"/news/{slug}.html"] = (feed.kind, now)

    def rss(self, name: str) -> bytes:
        feed = self.feeds[name]
        items = "".join(
            f"<item><title>{self.pages[slug].title}</title><link>{self.base}/news/{slug}.html</link>"
            f"<guid>{slug}</guid><pubDate>{_rfc822(at)}</pubDate></item>"
            for slug, at in feed.items[-20:]
        )
        return (
            f"<?xml version='1.0'?><rss version='2.0'><channel><title>{name}</title>{items}</channel></rss>"
        ).encode()

    def feed_url(self, name: str) -> str:
        return f"{self.base}/feed/{name}.xml"

    async def start(self) -> None:
        await self.hub.start()

        async def feed(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            headers = {"Content-Type": "application/rss+xml"}
            if self.feeds[name].push:
                headers["Link"] = f'<{self.hub.url}>; rel="hub", <{self.feed_url(name)}>; rel="self"'
            return web.Response(body=self.rss(name), headers=headers)

        async def page(request: web.Request) -> web.Response:
            found = self.pages.get(request.match_info["slug"])
            if found is None:
                raise web.HTTPNotFound()
            return web.Response(text=render_page(self.site, found, self.base), content_type="text/html")

        app = web.Application()
        app.router.add_get("/feed/{name}.xml", feed)
        app.router.add_get("/news/{slug}.html", page)
        self._runner, self.base = await serve_loopback(app)

    async def stop(self) -> None:
        await self._runner.cleanup()
        await self.hub.stop()


def _rfc822(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


async def freshness(minutes: float) -> None:
    room = Newsroom(articles(600, seed=23))
    now = time.time()
    for kind, count, period, push in KINDS:
        for k in range(count):
            room.add_feed(
                f"{kind.split(',')[0].replace(' ', '-')}-{'push' if push else 'poll'}-{k}",
                kind,
                period,
                push,
                now,
            )
    await room.start()
    alerted: dict[str, float] = {}

    async def sink(alert: Alert) -> None:
        path = alert.item_url.split("://", 1)[-1].split("/", 1)[-1]
        alerted.setdefault("/" + path, time.time())

    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="wirewatch-fresh-") as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "b.log") as broker,
    ):
        settings = load_settings(
            None,
            env={},
            broker=broker.url,
            data_dir=Path(tmp) / "data",
            allow_networks=("127.0.0.0/8",),
            host_delay=0.0,
            console_address=f"127.0.0.1:{port}",
            websub_callback=f"http://127.0.0.1:{port}/websub",
            websub_secret="bench",
        )
        feeds = [room.feed_url(name) for name in room.feeds]
        task = asyncio.create_task(
            run_pipeline(
                settings, feeds=feeds, watches=parse_watchlist(watchlist_yaml()), once=False, sinks=[sink]
            )
        )
        # Publishing starts once every pushed feed is subscribed (its first poll finds the hub): a
        # subscription lasts days, and its start is not what this measures.
        pushed = {room.feed_url(n) for n, f in room.feeds.items() if f.push}
        async with asyncio.timeout(180):
            while {s.topic for s in room.hub.subscribers.values()} < pushed:
                await asyncio.sleep(0.5)
        rng = random.Random(5)
        end = time.monotonic() + minutes * 60
        due = {name: time.monotonic() + rng.uniform(10, feed.period) for name, feed in room.feeds.items()}
        try:
            while time.monotonic() < end:
                for name, at in list(due.items()):
                    if at <= time.monotonic():
                        room.publish(name)
                        feed = room.feeds[name]
                        if feed.push:
                            await room.hub.publish(room.feed_url(name), room.rss(name))
                        due[name] = at + feed.period * rng.uniform(0.9, 1.1)
                await asyncio.sleep(0.2)
            # Let what was published in the last minutes arrive, up to the longest poll interval of the run.
            await asyncio.sleep(90)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await room.stop()
    print(f"publication to alert over {minutes:g} minutes ({len(room.published)} articles published):")
    for kind, *_ in KINDS:
        waits = sorted(alerted[p] - at for p, (k, at) in room.published.items() if k == kind and p in alerted)
        missing = sum(1 for p, (k, _) in room.published.items() if k == kind and p not in alerted)
        if not waits:
            print(f"  {kind:<24} no article alerted ({missing} published)")
            continue
        p95 = waits[min(len(waits) - 1, int(0.95 * len(waits)))]
        print(
            f"  {kind:<24} p50 {statistics.median(waits):6.1f} s  p95 {p95:6.1f} s"
            f"  ({len(waits)} alerted, {missing} not yet)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--feeds", type=int, default=1000, help="feeds for the poller's CPU")
    args = parser.parse_args()
    await run(args.minutes, args.feeds)


async def run(minutes: float, feeds: int = 1000) -> None:
    """Publication to alert by kind of feed over `minutes`, then the poller's CPU for `feeds` feeds."""
    await freshness(minutes)
    # Rounds 5 s apart to measure one; a feed whose pace is unknown is read every poll_interval (300 s).
    first, per_round = await poller_cpu(feeds, interval=5.0)
    interval = 300.0
    print(
        f"poller, {feeds} feeds: first poll {first:.2f} CPU-s, then {per_round:.2f} CPU-s a round;"
        f" at one round per {interval:.0f} s, {100 * per_round / interval:.2f}% of a core"
    )


if __name__ == "__main__":
    asyncio.run(main())
