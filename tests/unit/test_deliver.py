"""Delivery retries against a real HTTP server on loopback: 5xx, 429 with Retry-After, refusals."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from streams.alerting.deliver import (
    DeliveryFailed,
    RetryPolicy,
    post,
    retry_after_seconds,
    with_retries,
)
from tests.factories import loopback_http

FAST = RetryPolicy(first_delay=0.05, max_delay=0.2, deadline=30.0)


class Destination:
    """A webhook receiver that answers from a script of statuses, then 200, and records each request."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.received: list[tuple[float, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((time.monotonic(), await request.read()))
        if self.script:
            status, headers = self.script.pop(0)
            return web.Response(status=status, headers=headers, text="not now")
        return web.Response(status=200, text="ok")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_three_500s_then_200_delivers_once(session: aiohttp.ClientSession) -> None:
    dest = Destination([(500, {})] * 3)
    async with loopback_http({"/hook": dest.handle}) as base:
        url = base + "/hook"
        attempts = await with_retries(lambda: post(session, url, b'{"a":1}', {}, 5.0), FAST)
    assert attempts == 4
    assert [body for _, body in dest.received] == [b'{"a":1}'] * 4  # one success: the fourth


async def test_429_retry_after_delays_the_next_post(session: aiohttp.ClientSession) -> None:
    dest = Destination([(429, {"Retry-After": "2"})])
    async with loopback_http({"/hook": dest.handle}) as base:
        url = base + "/hook"
        await with_retries(lambda: post(session, url, b"{}", {}, 5.0), FAST)
    (first, _), (second, _) = dest.received
    assert second - first >= 2.0


async def test_a_4xx_refusal_is_not_retried(session: aiohttp.ClientSession) -> None:
    dest = Destination([(404, {})])
    async with loopback_http({"/hook": dest.handle}) as base:
        url = base + "/hook"
        with pytest.raises(DeliveryFailed) as info:
            await with_retries(lambda: post(session, url, b"{}", {}, 5.0), FAST)
    assert info.value.attempts == 1 and info.value.reason_class == "refused"


async def test_gives_up_at_the_deadline_with_the_last_error(session: aiohttp.ClientSession) -> None:
    dead = "http://127.0.0.1:9/hook"  # nothing listens on the discard port here
    policy = RetryPolicy(first_delay=0.05, max_delay=0.05, deadline=0.3)
    with pytest.raises(DeliveryFailed) as info:
        await with_retries(lambda: post(session, dead, b"{}", {}, 1.0), policy)
    assert info.value.reason_class == "unreachable" and info.value.attempts >= 2


def test_backoff_doubles_with_jitter_and_respects_retry_after() -> None:
    policy = RetryPolicy(first_delay=1.0, max_delay=8.0, jitter=0.2)
    rng = random.Random(3)
    waits = [policy.delay(n, None, rng) for n in range(1, 7)]
    for n, wait in enumerate(waits, start=1):
        base = min(8.0, 2.0 ** (n - 1))
        assert 0.8 * base <= wait <= 1.2 * base
    assert policy.delay(1, 30.0, rng) == 30.0


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None
