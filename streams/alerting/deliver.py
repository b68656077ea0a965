"""Posting to a destination with retries: exponential backoff with jitter, Retry-After, a deadline."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import aiohttp

from streams.reasons import ReasonClass


class DeliveryError(Exception):
    """One failed attempt; `retry` says whether another attempt can help."""

    def __init__(
        self, reason_class: ReasonClass, message: str, *, retry: bool, retry_after: float | None = None
    ):
        super().__init__(message)
        self.reason_class = reason_class
        self.retry = retry
        self.retry_after = retry_after


class DeliveryFailed(Exception):
    """No attempt succeeded before the deadline, or the destination refused for good."""

    def __init__(self, last: DeliveryError, attempts: int):
        super().__init__(f"gave up after {attempts} attempt(s): {last}")
        self.reason_class = last.reason_class
        self.last = last
        self.attempts = attempts


@dataclass(frozen=True)
class RetryPolicy:
    """Waits of first_delay, doubling up to max_delay, each spread by ±jitter; give up after deadline."""

    first_delay: float = 1.0
    max_delay: float = 300.0
    factor: float = 2.0
    jitter: float = 0.2
    deadline: float = 6 * 3600.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """The wait before attempt `attempt + 1` (attempt counts from 1); never shorter than Retry-After."""
        base = min(self.max_delay, self.first_delay * self.factor ** (attempt - 1))
        # Jitter spreads the retries of many alerts, so a recovering destination is not hit all at once.
        wait = base * (1 + rng.uniform(-self.jitter, self.jitter))
        return max(wait, retry_after or 0.0)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds to wait: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def http_failure(status: int, retry_after: str | None, message: str) -> DeliveryError:
    """A non-2xx answer: 429 and 5xx may pass (honouring Retry-After); any other refusal will not."""
    if status == 429 or status >= 500:
        kind: ReasonClass = "rate_limited" if status == 429 else "http_error"
        return DeliveryError(kind, message, retry=True, retry_after=retry_after_seconds(retry_after))
    return DeliveryError("refused", message, retry=False)


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> None:
    """One POST; DeliveryError unless the destination answered 2xx."""
    try:
        async with session.post(
            url,
            data=body,
            headers=dict(headers),
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as resp:
            if 200 <= resp.status < 300:
                await resp.read()
                return
            text = (await resp.text(errors="replace"))[:200]
            raise http_failure(resp.status, resp.headers.get("Retry-After"), f"HTTP {resp.status}: {text}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError("unreachable", f"{type(exc).__name__}: {exc}", retry=True) from exc


async def with_retries(
    attempt: Callable[[], Awaitable[object]],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Call attempt until it succeeds; return the number of attempts, or raise DeliveryFailed."""
    rng = rng or random.Random()
    started = clock()
    n = 0
    while True:
        n += 1
        try:
            await attempt()
            return n
        except DeliveryError as exc:
            wait = policy.delay(n, exc.retry_after, rng)
            if not exc.retry or clock() + wait - started > policy.deadline:
                raise DeliveryFailed(exc, n) from exc
            await sleep(wait)
