"""Reading a whole topic back from a real broker, with a deadline instead of sleeps."""

from __future__ import annotations

import asyncio

from streams.kafka.broker import read_topic

__all__ = ["distinct_alerts", "read_topic"]


async def distinct_alerts(
    broker: str, topic: str, want: int, timeout: float
) -> list[tuple[str, dict[str, object]]]:
    """Every record on the alerts topic, read again until `want` distinct alert ids are there or time is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        records = await read_topic(broker, topic)
        if len({key for key, _ in records}) >= want or loop.time() > deadline:
            return records
        await asyncio.sleep(1)  # the pace of re-reading, not a synchronisation: the loop checks a condition
