"""On a real broker: records put back are fetched again, unless the partition was sought meanwhile."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.kafka.broker import TopicSpec, ensure_topics
from streams.kafka.faust_patches import Batch, Transport, _Consumer, _ConsumerThread


@pytest.fixture
async def five_records(
    embedded_broker: str,
) -> AsyncIterator[tuple[_ConsumerThread, AIOKafkaConsumer, TopicPartition]]:
    """A fresh one-partition topic holding offsets 0-4, an aiokafka consumer assigned to it at offset 0, and
    wirewatch's consumer thread (not started: its fetch and put-back run here, on the test's loop)."""
    topic = f"putback-{uuid.uuid4().hex}"
    await ensure_topics(embedded_broker, [TopicSpec(topic, 1)], replication=1)
    bootstrap = embedded_broker.removeprefix("kafka://")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(5):
            await producer.send_and_wait(topic, f"record {n}".encode(), partition=0)
    finally:
        await producer.stop()
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    consumer.assign([tp])
    consumer.seek(tp, 0)
    app = faust.App("putback", broker=embedded_broker)
    transport = Transport(url=[embedded_broker], app=app, loop=asyncio.get_running_loop())

    async def nothing(*args: object, **kwargs: object) -> None:
        return None

    faust_consumer = _Consumer(
        transport, callback=nothing, on_partitions_revoked=nothing, on_partitions_assigned=nothing
    )
    try:
        yield faust_consumer._thread, consumer, tp
    finally:
        await consumer.stop()


async def fetch(thread: _ConsumerThread, consumer: AIOKafkaConsumer, tp: TopicPartition, want: int) -> Batch:
    """One batch holding `want` records of the partition (fetched in as many rounds as the broker needs)."""
    deadline = asyncio.get_running_loop().time() + 20
    got: list[object] = []
    while len(got) < want:
        assert asyncio.get_running_loop().time() < deadline, f"only {len(got)} of {want} records came"
        batch = await thread._fetch_records(consumer, frozenset({tp}), timeout=1.0)
        got.extend(batch.get(tp, []))
    return Batch({tp: got}, batch.ends)


async def test_undelivered_records_are_fetched_again(
    five_records: tuple[_ConsumerThread, AIOKafkaConsumer, TopicPartition],
) -> None:
    thread, consumer, tp = five_records
    batch = await fetch(thread, consumer, tp, 5)
    assert batch.ends == {tp: 5}
    back = batch.undelivered({tp: 1})  # offsets 0 and 1 reached a stream, 2-4 were dropped
    assert await thread._put_back(consumer, back) == [tp]
    again = await fetch(thread, consumer, tp, 3)
    assert [r.offset for r in again[tp]] == [2, 3, 4]


async def test_a_partition_sought_meanwhile_stays_where_the_seek_put_it(
    five_records: tuple[_ConsumerThread, AIOKafkaConsumer, TopicPartition],
) -> None:
    """Table recovery seeks a changelog to its start while a batch is on its way: putting the batch back
    must not undo that seek."""
    thread, consumer, tp = five_records
    batch = await fetch(thread, consumer, tp, 5)
    consumer.seek(tp, 0)
    assert await thread._put_back(consumer, batch.undelivered({tp: 2})) == []
    assert await consumer.position(tp) == 0
