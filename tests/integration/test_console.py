"""The web console, metrics and probes of a running pipeline, in a real headless Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.kafka.broker import free_port
from streams.kafka.topics import ALERTS
from streams.records import Alert, WatchMatch, utcnow
from streams.settings import Settings
from streams.site import Page, Site, SiteServer, load_site
from tests.integration.running import pipeline_running

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
BROWSER_NEEDS = (
    "the console's browser tests need Debian's chromium and chromium-driver (apt-get install them)"
)
#: A headline that runs script if the page ever treats article text as markup.
HOSTILE = '<img src=x onerror="window.__pwned=1">Haftar <script>window.__pwned=2</script>'
#: Where the README's screenshots come from: WIREWATCH_SCREENSHOTS=docs/console pytest -k console
SHOTS = os.environ.get("WIREWATCH_SCREENSHOTS")


async def _until(check: Callable[[], Any], what: str, deadline: float = 120.0) -> Any:
    """Poll an async or plain check until it returns something truthy, or fail saying what never came."""
    end = time.monotonic() + deadline
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {deadline:.0f} s")
        await asyncio.sleep(0.2)


@pytest.fixture
async def pipeline(unique_settings: Settings, embedded_broker: str) -> AsyncIterator[tuple[str, Settings]]:
    """The whole pipeline on the embedded broker over the demo site and one hostile page, with its console."""
    site = load_site()
    hostile = Page("hostile", HOSTILE + " forces shell Sirte", "2020-06-05T08:00:00Z", "", (
        "Forces loyal to Khalifa Haftar shelled the outskirts of Sirte overnight, residents said.",
        "The Government of National Accord said its units held their positions near the coast road.",
    ))  # fmt: skip
    server = SiteServer(
        Site(site.name, site.sidebar_title, site.sidebar, [*site.pages, hostile], site.extras)
    )
    await server.start()
    port = free_port()
    settings = replace(unique_settings, broker=embedded_broker, console_address=f"127.0.0.1:{port}")
    try:
        async with pipeline_running(settings, server.feed_url, []):
            yield f"http://127.0.0.1:{port}", settings
    finally:
        await server.stop()


async def _get(url: str) -> tuple[int, str]:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            return resp.status, await resp.text()
    except aiohttp.ClientError:
        return 0, ""


async def test_probes_and_metrics_follow_the_pipeline(pipeline: tuple[str, Settings]) -> None:
    base, _ = pipeline
    await _until(lambda: _status_is(base + "/healthz", 200), "/healthz answering 200")
    await _until(
        lambda: _status_is(base + "/readyz", 200), "/readyz answering 200 once partitions are assigned"
    )

    async def alerted() -> bool:
        _, text = await _get(base + "/metrics")
        return 'wirewatch_records_total{outcome="alerted",stage="alerter"}' in text

    await _until(alerted, "an alert counted on /metrics")
    _, text = await _get(base + "/metrics")
    for name in (
        "wirewatch_feed_polls_total",
        "wirewatch_alert_seconds_bucket",
        "wirewatch_dead_letters_total",
        "wirewatch_consumer_lag",
    ):
        assert name in text, name
    # Bounded labels: no feed or article URL is ever a label value.
    assert [line for line in text.splitlines() if line.startswith("wirewatch_") and "://" in line] == []
    status, body = await _get(base + "/readyz")
    assert status == 200 and body.startswith("ok:"), body


async def _status_is(url: str, status: int) -> bool:
    return (await _get(url))[0] == status


@pytest.fixture
def browser() -> Any:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail(BROWSER_NEEDS)
        pytest.skip(BROWSER_NEEDS)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


async def test_the_console_shows_alerts_live_and_safely(pipeline: tuple[str, Settings], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, settings = pipeline
    await _until(lambda: _status_is(base + "/readyz", 200), "a ready worker")

    def run(fn: Callable[..., Any], *args: Any) -> Any:
        return asyncio.to_thread(fn, *args)

    def titles() -> list[str]:
        return [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".alert h3")]

    await run(browser.get, base + "/")
    # The demo's alerts come through the pipeline, the hostile headline among them, shown as text.
    await _until(lambda: run(lambda: any(HOSTILE in t for t in titles())), "the hostile headline as text")
    assert await run(browser.execute_script, "return window.__pwned === undefined") is True
    assert await run(lambda: browser.find_elements(By.CSS_SELECTOR, ".alert mark"))  # names highlighted

    # An alert put on the topic is on the page within 5 s, without a reload.
    marker = f"Live check {time.time():.0f}: Sirte port reopens"
    alert = Alert(
        alert_id=f"live-{time.time_ns()}",
        url="javascript:alert(1)",
        item_url="https://example.invalid/live",
        title=marker,
        source="Console Test Wire",
        published=None,
        watches=["sirte"],
        matches=[
            WatchMatch(watch="sirte", kind="location", text="Sirte", start=0, end=5, how="exact", score=1.0)
        ],
        snippet="Sirte port reopens after a week of clashes.",
        created_at=utcnow(),
        language="en",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.broker.removeprefix("kafka://") if settings.broker else ""
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic_prefix + ALERTS, orjson.dumps(alert.to_json()), alert.alert_id.encode()
        )
        on_topic = time.monotonic()
    finally:
        await producer.stop()
    await _until(lambda: run(lambda: marker in titles()), "the new alert on the page", deadline=5.0)
    assert time.monotonic() - on_topic <= 5.0
    # Its javascript: URL is no link.
    links = await run(lambda: browser.find_elements(By.XPATH, f"//h3[contains(., '{marker}')]/a"))
    assert links == []

    # Filters: by source, only that outlet's alert is shown.
    await run(
        lambda: Select(browser.find_element(By.ID, "f-source")).select_by_visible_text("Console Test Wire")
    )
    shown = await run(
        lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".alert:not(.hidden) > h3")]
    )
    assert shown == [marker]
    await run(lambda: Select(browser.find_element(By.ID, "f-source")).select_by_index(0))
    if SHOTS:
        await run(browser.save_screenshot, str(Path(SHOTS) / "alerts.png"))

    # The "try it" box explains what it matched.
    await run(lambda: browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=watchlist]").click())
    await run(
        lambda: browser.find_element(By.ID, "try-text").send_keys("Forces loyal to Hifter shelled Sirte.")
    )
    await run(lambda: browser.find_element(By.CSS_SELECTOR, "#try button").click())
    result = await _until(
        lambda: run(
            lambda: (
                browser.find_element(By.ID, "try-result").text
                if "khalifa-haftar" in browser.find_element(By.ID, "try-result").text
                else ""
            )
        ),
        "the try-it box's matches",
        deadline=20.0,
    )
    assert "sirte" in result and "Hifter" in result
    if SHOTS:
        await run(browser.save_screenshot, str(Path(SHOTS) / "watchlist.png"))

    # Feeds and dead letters (the demo site's PDF and removed story) come from their topics.
    for tab, what in (("feeds", "feed-rows"), ("deadletters", "dead-rows"), ("pipeline", "stage-rows")):
        await run(lambda t=tab: browser.find_element(By.CSS_SELECTOR, f"nav button[data-tab={t}]").click())
        await _until(
            lambda w=what: run(lambda: len(browser.find_elements(By.CSS_SELECTOR, f"#{w} tr")) > 0),
            f"rows in #{what}",
            deadline=20.0,
        )
        if SHOTS:
            await run(browser.save_screenshot, str(Path(SHOTS) / f"{tab}.png"))
    errors = [e for e in await run(browser.get_log, "browser") if e["level"] == "SEVERE"]
    assert errors == []
