"""The offset guard: no commit past a record never handled, and a forgotten hole is read again."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from streams.app import OffsetGuard

RAW = TP("wirewatch.articles.raw", 1)


@dataclass(frozen=True)
class Msg:
    tp: TP
    offset: int


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

    def assignment(self) -> set[TP]:
        return {RAW}

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
