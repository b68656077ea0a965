"""robots.txt per site (RFC 9309): fetched through the guarded client, cached, consulted per page."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.robotparser import RobotFileParser

from yarl import URL

from streams.ingest.fetch import FetchError, Limits, SafeClient

# How long an answer is kept; an unreachable robots.txt is asked for again sooner.
TTL = 3600.0
RETRY_UNREACHABLE = 300.0
MAX_ROBOTS_BYTES = 500_000  # RFC 9309 asks crawlers to parse at least 500 KiB


class RobotsDisallowed(FetchError):
    """A page the site's robots.txt asks wirewatch not to fetch."""

    def __init__(self, message: str) -> None:
        super().__init__("robots_disallowed", message)


@dataclass
class Robots:
    """robots.txt rules by origin, shared by every fetch in the process."""

    client: SafeClient
    agent: str
    limits: Limits
    clock: Callable[[], float] = time.monotonic
    _rules: dict[str, tuple[float, RobotFileParser | None]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def check(self, url: str) -> None:
        """RobotsDisallowed unless the page's site allows the agent to fetch it."""
        target = URL(url)
        origin = str(target.origin())
        async with self._locks.setdefault(origin, asyncio.Lock()):
            cached = self._rules.get(origin)
            if cached is None or cached[0] <= self.clock():
                cached = self._rules[origin] = await self._load(origin)
        rules = cached[1]
        if rules is None:
            raise RobotsDisallowed(
                f"{origin}/robots.txt answers with errors, so no page of the site is fetched"
            )
        if not rules.can_fetch(self.agent, url):
            raise RobotsDisallowed(f"{origin}/robots.txt disallows {url} for {self.agent}")

    async def _load(self, origin: str) -> tuple[float, RobotFileParser | None]:
        rules = RobotFileParser()
        limits = dataclasses.replace(self.limits, max_bytes=MAX_ROBOTS_BYTES)
        try:
            resp = await self.client.get(origin + "/robots.txt", limits, {"Accept": "text/plain"})
        except FetchError as exc:
            # RFC 9309: a missing file (4xx) allows everything; a server that answers with errors
            # (5xx, 429) allows nothing for now. A site that cannot be reached at all fails the page the
            # same way, so that failure is the one reported.
            if exc.status is None and exc.reason_class != "too_large":
                raise
            if exc.reason_class == "too_large" or (
                exc.status is not None and 400 <= exc.status < 500 and exc.status != 429
            ):
                rules.parse([])  # no rules: everything allowed
                return self.clock() + TTL, rules
            return self.clock() + RETRY_UNREACHABLE, None
        rules.parse(resp.body.decode("utf-8", errors="replace").splitlines())
        return self.clock() + TTL, rules
