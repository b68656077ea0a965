"""Reading a whole topic back from a real broker, with a deadline instead of sleeps."""

from __future__ import annotations

import asyncio
import uuid

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_topic(
    broker_url: str, topic: str, timeout: float = 20.0
) -> list[tuple[str, dict[str, object]]]:
    """Every (key, value) on the topic from the beginning up to its end offsets now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker_url.removeprefix("kafka://"),
        group_id=f"reader-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and loop.time() < deadline:
            await consumer._client.force_metadata_update()  # metadata for a topic we never subscribed to
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[str, dict[str, object]]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if loop.time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout}s")
            batch = await consumer.getmany(*tps, timeout_ms=500)
            for records in batch.values():
                out.extend((r.key.decode(), orjson.loads(r.value)) for r in records)
        return out
    finally:
        await consumer.stop()
