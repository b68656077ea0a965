"""Small builders for records used across test modules."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from streams.records import Alert, WatchMatch
from streams.site import serve_loopback

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def mention(text: str, watch: str, surface: str, kind: str = "actor", how: str = "exact") -> WatchMatch:
    """The WatchMatch for the first place `surface` stands in `text`."""
    start = text.index(surface)
    return WatchMatch(
        watch=watch, kind=kind, text=surface, start=start, end=start + len(surface), how=how, score=1.0
    )


def make_alert(
    title: str = "Haftar's forces regroup",
    snippet: str = "Forces loyal to Khalifa Haftar regrouped.",
    url: str = "https://news.example/2020/06/haftar",
    surface: str = "Hifter",
    how: str = "variant",
) -> Alert:
    """An alert on the Haftar watch, with the text fields a test wants to make hostile."""
    return Alert(
        alert_id="a1",
        url=url,
        item_url=url,
        title=title,
        source="Desert Wire",
        published="2020-06-08T09:40:00Z",
        watches=["khalifa-haftar"],
        matches=[
            WatchMatch(watch="khalifa-haftar", kind="actor", text=surface, start=0, end=6, how=how, score=0.9)
        ],
        snippet=snippet,
        created_at="2020-06-08T09:41:00Z",
    )


@asynccontextmanager
async def loopback_http(routes: dict[str, Handler]) -> AsyncIterator[str]:
    """An HTTP server on a free loopback port answering POSTs to the given paths; yields its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_post(path, handler)
    runner, base = await serve_loopback(app)
    try:
        yield base
    finally:
        await runner.cleanup()


def worker_argv(
    broker: str, feeds: Path, watchlist: Path, data_dir: Path, log_level: str = "warning"
) -> list[str]:
    """The command line of a `wirewatch worker` printing alerts as JSON lines, run from the checkout."""
    return [
        sys.executable,
        "-m",
        "streams.cli",
        "worker",
        "--log-level",
        log_level,
        "--broker",
        broker,
        "--format",
        "jsonl",
        "--feeds",
        str(feeds),
        "--watchlist",
        str(watchlist),
        "--data-dir",
        str(data_dir),
    ]
