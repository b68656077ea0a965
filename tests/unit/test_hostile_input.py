"""Crafted feeds and pages end in a clear refusal within bounded time; CPU slots enforce their deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from streams.ingest.clean import ExtractionFailed, clean_html
from streams.ingest.feeds import BadFeed, parse_feed
from streams.pipeline import cpuproc
from streams.site import serve_loopback
from tests.cpu_tasks import crash, pid, spin

FEEDS = Path(__file__).parent.parent / "data" / "feeds"
FEED_URL = "https://hostile.example/feed.xml"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>Clashes near Sirte</title><link>https://hostile.example/a</link></item>
</channel></rss>
"""


def external_entity_feed(target: str) -> bytes:
    return f"""<?xml version="1.0"?>
<!DOCTYPE rss [ <!ENTITY secret SYSTEM "{target}"> ]>
<rss version="2.0"><channel><title>Leaks &secret;</title>
<item><title>&secret;</title><link>https://hostile.example/b</link></item>
</channel></rss>
""".encode()


def external_dtd_feed(target: str) -> bytes:
    return f"""<?xml version="1.0"?>
<!DOCTYPE rss SYSTEM "{target}">
<rss version="2.0"><channel><title>Desert Dispatch</title>
<item><title>Talks in Geneva</title><link>https://hostile.example/c</link></item>
</channel></rss>
""".encode()


def pathological_author_feed(n: int) -> bytes:
    """An author field that sends feedparser's e-mail regex into backtracking: seconds grow with n squared."""
    author = "a" * n + "@" + "a." * n
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Slow</title>
<item><title>x</title><link>https://hostile.example/d</link><author>{author}</author></item>
</channel></rss>""".encode()


def deep_nesting_page(depth: int = 100_000) -> str:
    body = "<p>Haftar's forces were reported near Sirte on Tuesday, residents said.</p>" * 5
    return f"<html><body>{'<b>' * depth}{body}{'</b>' * depth}</body></html>"


def huge_table_page(rows: int = 150_000) -> str:
    # About 5 MB, the default page cap: the largest table a page may carry.
    return "<html><body><table>" + "<tr><td>Sirte</td><td>1</td></tr>" * rows + "</table></body></html>"


@pytest.fixture
async def intranet() -> AsyncIterator[tuple[str, list[str]]]:
    """An internal service on loopback that a crafted feed would like wirewatch to read."""
    hits: list[str] = []

    async def secret(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="root:x:0:0", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/{tail:.*}", secret)
    runner, base = await serve_loopback(app)
    yield base, hits
    await runner.cleanup()


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(BadFeed, match="entities"):
        parse_feed(BILLION_LAUGHS, FEED_URL)
    assert time.monotonic() - started < 1.0


def test_billion_laughs_in_utf16_is_refused_too() -> None:
    with pytest.raises(BadFeed, match="entities"):
        parse_feed(
            BILLION_LAUGHS.decode()
            .replace('version="1.0"', 'version="1.0" encoding="utf-16"')
            .encode("utf-16"),
            FEED_URL,
        )


@pytest.mark.parametrize("target", ["file:///etc/passwd", "INTRANET/admin"])
async def test_external_entities_open_nothing(intranet: tuple[str, list[str]], target: str) -> None:
    base, hits = intranet
    data = external_entity_feed(target.replace("INTRANET", base))
    with pytest.raises(BadFeed, match="entities"):
        await asyncio.to_thread(parse_feed, data, FEED_URL)
    assert hits == []


async def test_an_external_dtd_is_never_fetched(intranet: tuple[str, list[str]]) -> None:
    base, hits = intranet
    feed = await asyncio.to_thread(parse_feed, external_dtd_feed(base + "/rss.dtd"), FEED_URL)
    assert [i.title for i in feed.items] == ["Talks in Geneva"]
    assert hits == []


def test_deep_nesting_page_fails_cleanly() -> None:
    started = time.monotonic()
    with pytest.raises(ExtractionFailed):
        clean_html(deep_nesting_page(), "https://hostile.example/deep", "Deep")
    assert time.monotonic() - started < 10.0


@pytest.fixture
async def slots() -> AsyncIterator[cpuproc.Slots]:
    # No spaCy here: these tests are about the processes, and loading a model would only slow them.
    pool = cpuproc.Slots(2, model="")
    yield pool
    pool.shutdown()


def _run(pool: cpuproc.Slots, limit: float, fn: object, *args: object) -> object:
    import functools

    return pool.run_within(limit, "test work", "test_failed", functools.partial(fn, *args))  # type: ignore[arg-type]


async def test_a_slot_past_its_deadline_is_killed_and_replaced(slots: cpuproc.Slots) -> None:
    before = await _run(slots, 30, pid)
    started = time.monotonic()
    with pytest.raises(cpuproc.WorkFailed) as info:
        await _run(slots, 1.0, spin, 60)
    assert info.value.reason_class == "timeout"
    assert time.monotonic() - started < 5.0
    # The other slot was untouched, and the killed one comes back as a new process.
    pids = {await _run(slots, 30, pid) for _ in range(6)}
    assert before in pids or len(pids) == 2
    assert await _run(slots, 30, spin, 0.01) == "done"


async def test_work_that_kills_its_process_is_a_failure_not_a_dead_pool(slots: cpuproc.Slots) -> None:
    with pytest.raises(cpuproc.WorkFailed) as info:
        await _run(slots, 30, crash)
    assert info.value.reason_class == "test_failed"
    assert await _run(slots, 30, spin, 0.01) == "done"


async def test_the_deadline_counts_only_the_work_itself(slots: cpuproc.Slots) -> None:
    """Four tasks of 0.8 s on two slots with a 1.5 s limit: the queued ones wait longer, and pass."""
    results = await asyncio.gather(*(_run(slots, 1.5, spin, 0.8) for _ in range(4)))
    assert results == ["done"] * 4


async def test_a_fresh_process_does_not_charge_its_warm_up_to_the_first_page(slots: cpuproc.Slots) -> None:
    """A replaced process loads trafilatura's parsers and the language model (about 0.5 s) before any
    deadline: its first page, 2 ms of work, fits in 0.2 s (0.4 s with the load). It did not, and was
    dead-lettered as a timeout."""
    with pytest.raises(cpuproc.WorkFailed):
        await _run(slots, 0.5, spin, 60)  # one slot's process is killed and replaced
    page = (
        "<html><body><article><p>"
        + "Officials said the road reopened on Monday. " * 12
        + "</p></article></body></html>"
    )
    for _ in range(2):  # both slots, the new process among them
        cleaned = await _run(slots, 0.2, clean_html, page, "https://fresh.example/a", "Fresh")
        assert cleaned.language == "en"  # type: ignore[attr-defined]


async def test_a_pathological_feed_ends_at_its_parse_deadline(slots: cpuproc.Slots) -> None:
    data = pathological_author_feed(16_000)  # about a minute of feedparser's time on this machine
    started = time.monotonic()
    with pytest.raises(cpuproc.WorkFailed) as info:
        await _run(slots, 2.0, parse_feed, data, FEED_URL)
    assert info.value.reason_class == "timeout"
    assert time.monotonic() - started < 6.0


async def test_a_huge_table_ends_at_the_extraction_deadline(slots: cpuproc.Slots) -> None:
    with pytest.raises(cpuproc.WorkFailed) as info:
        await _run(slots, 2.0, clean_html, huge_table_page(), "https://hostile.example/table", "Table")
    assert info.value.reason_class == "timeout"


async def test_a_task_queued_behind_one_past_its_deadline_runs_on_the_replacement() -> None:
    """One slot, two tasks handed to it at once: the first spins past its limit and its process is
    killed; the second, which never ran, runs on the new process and is charged nothing."""
    pool = cpuproc.Slots(1, model="")
    try:
        first_pid = await _run(pool, 30, pid)
        stuck = asyncio.ensure_future(_run(pool, 1.0, spin, 60))
        behind = asyncio.ensure_future(_run(pool, 0.5, pid))
        with pytest.raises(cpuproc.WorkFailed) as info:
            await stuck
        assert info.value.reason_class == "timeout"
        assert await behind not in (first_pid, None)
    finally:
        pool.shutdown()


async def test_a_task_queued_behind_one_that_crashes_its_process_is_not_blamed() -> None:
    pool = cpuproc.Slots(1, model="")
    try:
        await _run(pool, 30, pid)
        crashed = asyncio.ensure_future(_run(pool, 30, crash))
        behind = asyncio.ensure_future(_run(pool, 30, spin, 0.01))
        with pytest.raises(cpuproc.WorkFailed) as info:
            await crashed
        assert info.value.reason_class == "test_failed"
        assert await behind == "done"
    finally:
        pool.shutdown()


async def test_a_task_goes_to_an_idle_process_before_one_that_is_busy(slots: cpuproc.Slots) -> None:
    long = asyncio.ensure_future(_run(slots, 30, spin, 2.0))
    idle = await _run(slots, 30, pid)
    again = await _run(slots, 30, pid)  # not queued behind the long task, on the other process
    assert again == idle and not long.done()
    assert await long == "done"
