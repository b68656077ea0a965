"""The offset guard: no commit past a record never handled, and a forgotten hole is read again."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from streams.app import OffsetGuard

RAW = TP("wirewatch.articles.raw", 1)
CHANGELOG = TP("wirewatch-articles-changelog", 0)


@dataclass(frozen=True)
class Msg:
    tp: TP
    offset: int


class FakeTopics:
    def acks_enabled_for(self, topic: str) -> bool:
        return not topic.endswith("-changelog")  # the agents' topics, not the tables' changelogs


class FakeApp:
    in_recovery = False
    topics = FakeTopics()


@dataclass
class FakeConsumer:
    """The few attributes of Faust's consumer that the guard reads and wraps."""

    _committed_offset: dict[TP, int | None] = field(default_factory=lambda: defaultdict(lambda: None))
    _acked: dict[TP, list[int]] = field(default_factory=dict)
    _unacked_messages: set[Msg] = field(default_factory=set)
    _read_offset: Any = None
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)

    def _new_offset(self, tp: TP) -> int | None:
        # Faust's own rule, reduced: the end of the first run of consecutive acked offsets.
        acked = sorted(self._acked.get(tp, []))
        if not acked:
            return None
        end = acked[0]
        while end + 1 in acked:
            end += 1
        return end + 1

    async def callback(self, message: Msg) -> None:
        self.delivered.append(message.offset)

    highwaters: dict[TP, int] = field(default_factory=dict)
    _paused_partitions: set[TP] = field(default_factory=set)
    _active_partitions: set[TP] = field(default_factory=set)
    app: Any = field(default_factory=lambda: FakeApp())

    def assignment(self) -> set[TP]:
        return {RAW, CHANGELOG}

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters.get(tp)

    def resume_partitions(self, tps: set[TP]) -> None:
        self._paused_partitions -= tps

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.extend(partitions.items())


async def test_no_commit_past_a_hole_even_without_a_committed_offset() -> None:
    consumer = FakeConsumer()
    guard = OffsetGuard(consumer)
    await consumer.callback(Msg(RAW, 0))  # the guard's wrapper notes where reading began
    assert consumer.delivered == [0]
    consumer._acked[RAW] = [3, 4, 5]  # 0-2 skipped by the stream, never handled
    assert consumer._new_offset(RAW) is None
    consumer._acked[RAW] = [0, 1, 2, 3]
    assert guard.new_offset(RAW) == 4
    assert consumer._read_offset[RAW] is None  # Faust's read-offset bookkeeping is off


async def test_a_hole_nobody_fills_is_read_again_after_two_checks() -> None:
    consumer = FakeConsumer()
    consumer._committed_offset[RAW] = 10
    guard = OffsetGuard(consumer)
    consumer._acked[RAW] = [21, 22, 23]
    await guard.mend()
    assert consumer.seeks == []  # once could be a record still queued for its handler
    await guard.mend()
    assert consumer.seeks == [(RAW, 10)]


async def test_a_hole_being_handled_is_left_alone() -> None:
    consumer = FakeConsumer()
    consumer._committed_offset[RAW] = 10
    guard = OffsetGuard(consumer)
    consumer._acked[RAW] = [11, 12]
    consumer._unacked_messages.add(Msg(RAW, 10))  # offset 10 is in a handler right now
    for _ in range(3):
        await guard.mend()
    assert consumer.seeks == []
    assert guard.new_offset(RAW) is None


async def test_a_partition_whose_records_never_come_is_read_again() -> None:
    """Records wait beyond the committed offset, none arrives and none is being handled: after the stall
    time the partition is read again from its committed offset (and resumed if it was left paused)."""
    now = [0.0]
    consumer = FakeConsumer()
    consumer._committed_offset[RAW] = 40
    consumer.highwaters[RAW] = 55
    consumer._paused_partitions.add(RAW)
    # A table's changelog, read once by recovery and quiet since: never a stall of the streams.
    consumer._committed_offset[CHANGELOG] = 0
    consumer.highwaters[CHANGELOG] = 16
    guard = OffsetGuard(consumer, clock=lambda: now[0])
    await guard.mend()
    now[0] = OffsetGuard.STALL_SECONDS - 1
    await guard.mend()
    assert consumer.seeks == []
    consumer._unacked_messages.add(Msg(RAW, 40))  # a handler busy with it: not a stall
    now[0] = OffsetGuard.STALL_SECONDS + 5
    await guard.mend()
    assert consumer.seeks == []
    consumer._unacked_messages.clear()
    await guard.mend()
    assert consumer.seeks == [(RAW, 40)] and RAW not in consumer._paused_partitions


async def test_a_partition_read_to_its_end_is_no_stall() -> None:
    now = [0.0]
    consumer = FakeConsumer()
    consumer._committed_offset[RAW] = 55
    consumer.highwaters[RAW] = 55
    guard = OffsetGuard(consumer, clock=lambda: now[0])
    for t in (0.0, 100.0, 1000.0):
        now[0] = t
        await guard.mend()
    assert consumer.seeks == []
