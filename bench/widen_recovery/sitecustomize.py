"""Loaded by the workers of `bench/faults.py --recovery-delay S`: recovery waits S seconds after seeking."""

from __future__ import annotations

import asyncio
import os
from typing import Any

DELAY = float(os.environ.get("WIREWATCH_BENCH_RECOVERY_DELAY") or 0)

if DELAY > 0:
    from faust.tables.recovery import Recovery

    seek_offsets = Recovery._seek_offsets

    # Recovery seeks the active changelogs to their start, then resumes the flow. A fetch that was already
    # waiting when the rebalance began may return their first records in between, and Faust dropped such
    # records: the stall of issue 11, seen about once in a hundred kills. Waiting here makes it frequent.
    async def _seek_then_wait(self: Any, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        await seek_offsets(self, consumer, tps, offsets, title)
        if title == "active":
            await asyncio.sleep(DELAY)

    Recovery._seek_offsets = _seek_then_wait  # type: ignore[method-assign]
