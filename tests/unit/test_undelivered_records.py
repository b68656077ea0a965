"""Records Faust takes from aiokafka but never hands to a stream or a table go back to be fetched again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.kafka.faust_patches import Batch, Transport, _Consumer

RAW = TP("wirewatch.articles.raw", 1)
CHANGELOG = TP("wirewatch-alerts-changelog", 0)


def records(tp: TP, *offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [ConsumerRecord(tp.topic, tp.partition, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in offsets]


def test_the_first_record_after_the_last_one_delivered_is_where_reading_resumes() -> None:
    batch = Batch({RAW: records(RAW, 4, 5, 6), CHANGELOG: records(CHANGELOG, 0, 1)}, {RAW: 7, CHANGELOG: 2})
    assert batch.undelivered({RAW: 4}) == {RAW: (5, 7), CHANGELOG: (0, 2)}
    assert batch.undelivered({RAW: 6, CHANGELOG: 1}) == {}
    # A partition aiokafka no longer has a position on is left to whoever assigns it next.
    assert Batch({RAW: records(RAW, 4)}, {RAW: None}).undelivered({}) == {}


class FakeThread:
    """The consumer thread: hands over one batch (running `meanwhile` first, as the rebalance or pause
    that happens while the batch is on its way) and records what is put back."""

    def __init__(self, batch: Batch, meanwhile: Callable[[], None] = lambda: None) -> None:
        self.batch = batch
        self.meanwhile = meanwhile
        self.put: list[dict[Any, tuple[int, int]]] = []

    async def getmany(self, active: Any, timeout: float) -> Batch:
        self.meanwhile()
        return self.batch

    async def put_back(self, back: dict[Any, tuple[int, int]]) -> list[Any]:
        self.put.append(dict(back))
        return list(back)

    def highwater(self, tp: TP) -> int:
        return 0


@pytest.fixture
async def consumer() -> AsyncIterator[_Consumer]:
    """wirewatch's Faust consumer, not started: getmany runs as in a worker, over a fake thread."""
    app = faust.App("undelivered", broker="kafka://127.0.0.1:1")
    transport = Transport(url=["kafka://127.0.0.1:1"], app=app, loop=asyncio.get_running_loop())

    async def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    c = _Consumer(transport, callback=nothing, on_partitions_revoked=nothing, on_partitions_assigned=nothing)
    c.perform_seek = nothing  # type: ignore[method-assign]  # Faust seeks streams back when the flow stopped
    c._active_partitions = {RAW, CHANGELOG}
    yield c


async def drain(c: _Consumer, thread: FakeThread, on_message: Callable[[], None] = lambda: None) -> list[Any]:
    c._thread = thread  # type: ignore[assignment]
    got = []
    async for tp, message in c.getmany(timeout=1.0):
        got.append((tp, message.offset))
        on_message()
    return got


def both_partitions() -> Batch:
    return Batch({RAW: records(RAW, 4, 5, 6), CHANGELOG: records(CHANGELOG, 0, 1, 2)}, {RAW: 7, CHANGELOG: 3})


async def test_records_that_arrive_after_a_rebalance_stopped_the_flow_go_back(consumer: _Consumer) -> None:
    """The stall after a worker was killed: table recovery seeks a changelog to its start, the fetch that
    was already waiting returns its records before recovery resumes the flow, and Faust drops them."""
    thread = FakeThread(both_partitions(), meanwhile=consumer.stop_flow)
    assert await drain(consumer, thread) == []
    assert thread.put == [{RAW: (4, 7), CHANGELOG: (0, 3)}]


async def test_the_rest_of_a_batch_cut_short_by_a_rebalance_goes_back(consumer: _Consumer) -> None:
    thread = FakeThread(both_partitions())
    got = await drain(consumer, thread, on_message=consumer.stop_flow)
    assert len(got) == 1
    tp, offset = got[0]
    other = CHANGELOG if tp == RAW else RAW
    first_of_other = thread.batch[other][0].offset
    assert thread.put == [
        {tp: (offset + 1, thread.batch.ends[tp]), other: (first_of_other, thread.batch.ends[other])}
    ]


async def test_records_of_a_partition_paused_while_they_were_fetched_go_back(consumer: _Consumer) -> None:
    thread = FakeThread(both_partitions(), meanwhile=lambda: consumer.pause_partitions({CHANGELOG}))
    got = await drain(consumer, thread)
    assert sorted(got) == [(RAW, 4), (RAW, 5), (RAW, 6)]
    assert thread.put == [{CHANGELOG: (0, 3)}]


async def test_a_batch_delivered_whole_puts_nothing_back(consumer: _Consumer) -> None:
    thread = FakeThread(both_partitions())
    assert len(await drain(consumer, thread)) == 6
    assert thread.put == []
