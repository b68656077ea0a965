"""Which feed items are still in flight, and how each ended: what `run --once` waits on and reports."""

from __future__ import annotations

import asyncio


class Finished(str):
    """A stage's outcome that ends an item's way through the pipeline ("duplicate", "no watch named"):
    the stage wrapper records it in Progress. A plain string outcome hands the item on."""


class Progress:
    """Which feed items are still in flight, so `run --once` knows when everything has gone through."""

    def __init__(self) -> None:
        self.pending: set[str] = set()
        self.outcomes: dict[str, str] = {}
        # Feeds whose last poll failed: (reason class, message), by feed URL.
        self.feed_failures: dict[str, tuple[str, str]] = {}
        self.polling_done = asyncio.Event()
        self._changed = asyncio.Event()

    def expect(self, key: str) -> None:
        if key not in self.outcomes:
            self.pending.add(key)

    def finish(self, key: str | None, outcome: str) -> None:
        if key is None:
            return
        self.pending.discard(key)
        self.outcomes.setdefault(key, outcome)
        self._changed.set()

    @property
    def idle(self) -> bool:
        return self.polling_done.is_set() and not self.pending

    async def wait_idle(self, timeout: float) -> bool:
        """True once polling is done and no item is in flight; False if the timeout passes first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.idle:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            waiters = [
                asyncio.ensure_future(self._changed.wait()),
                asyncio.ensure_future(self.polling_done.wait()),
            ]
            _, undone = await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            for waiter in undone:
                waiter.cancel()
        return True
