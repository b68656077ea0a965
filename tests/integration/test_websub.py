"""WebSub end to end: a loopback hub pushes a feed to a running pipeline, which alerts within seconds."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import aiohttp
import pytest

from streams.hub import Hub
from streams.kafka.broker import free_port
from streams.records import Alert
from streams.settings import Settings
from streams.site import Page, Site, SiteServer, render_feed
from tests.integration.running import pipeline_running


async def _until_true(check: object, what: str, deadline: float) -> float:
    """Seconds it took for check() (async) to hold; fails the test past the deadline."""
    start = time.monotonic()
    while not await check():  # type: ignore[operator]
        if time.monotonic() - start > deadline:
            pytest.fail(f"{what}: not within {deadline:g} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def _page(slug: str, title: str, place: str) -> Page:
    return Page(slug, title, "2020-06-07T09:00:00Z", "", (
        f"Forces loyal to Khalifa Haftar shelled the outskirts of {place} overnight, residents said.",
        "The Government of National Accord said its units held their positions near the coast road.",
    ))  # fmt: skip


async def test_a_pushed_feed_alerts_in_seconds_and_a_forged_push_is_ignored(
    unique_settings: Settings, embedded_broker: str
) -> None:
    hub = Hub()
    await hub.start()
    site = Site("Push Wire", "Most read", [], [_page("first", "Shelling near Sirte", "Sirte")])
    server = SiteServer(site)
    await server.start()
    server.hub = hub.url
    port = free_port()
    settings = replace(
        unique_settings,
        broker=embedded_broker,
        console_address=f"127.0.0.1:{port}",
        websub_callback=f"http://127.0.0.1:{port}/websub",
        websub_secret="group secret",
    )
    alerts: list[Alert] = []

    async def sink(alert: Alert) -> None:
        alerts.append(alert)

    def titles() -> set[str]:
        return {a.title for a in alerts}

    try:
        async with pipeline_running(settings, server.feed_url, [sink]):
            # The first poll finds the hub in the feed's Link header; the subscription's intent is verified.
            await asyncio.wait_for(hub.verified.wait(), 120)
            (request,) = [r for r in hub.requests if r["hub.mode"] == "subscribe"]
            assert request["hub.topic"] == server.feed_url
            assert request["hub.secret"] and request["hub.secret"] != "group secret"  # derived per feed
            await _until_true(
                lambda: _true("Shelling near Sirte" in titles()), "the polled article's alert", 120
            )

            # A new article, pushed: its alert comes without waiting for a poll.
            site.pages.append(_page("pushed", "Pushed: fighting near Jufra", "Jufra"))
            assert await hub.publish(server.feed_url, render_feed(site, server.base).encode()) == [202]
            took = await _until_true(
                lambda: _true("Pushed: fighting near Jufra" in titles()), "the pushed alert", 5.0
            )
            assert took < 5.0

            # A push signed with the wrong secret is acknowledged, counted and ignored.
            site.pages.append(_page("forged", "Forged: Haftar takes Tripoli", "Tripoli"))
            assert await hub.publish(
                server.feed_url, render_feed(site, server.base).encode(), forge=True
            ) == [202]

            async def counted() -> bool:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{port}/metrics") as resp,
                ):
                    return 'wirewatch_websub_deliveries_total{result="forged"} 1.0' in await resp.text()

            await _until_true(counted, "the forged push counted", 5.0)
            # Counted once its handler has returned, having published nothing: the article was never fetched.
            assert "/news/forged.html" not in server.requests
    finally:
        await server.stop()
        await hub.stop()


async def _true(value: bool) -> bool:
    return value
