"""The offset guard: no commit past a record no agent handled, and whatever was never handled is read again."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from prometheus_client import REGISTRY

from streams import metrics
from streams.kafka.faust_patches import OffsetGuard, _Consumer

RAW = TP("wirewatch.articles.raw", 1)
CHANGELOG = TP("wirewatch-articles-changelog", 0)


@dataclass(frozen=True)
class Msg:
    tp: TP
    offset: int


class FakeTopics:
    def acks_enabled_for(self, topic: str) -> bool:
        return not topic.endswith("-changelog")  # the agents' topics, not the tables' changelogs


class FakeFlow:
    def is_active(self) -> bool:
        return True


class FakeRecovery:
    active_highwaters = {CHANGELOG: 16}
    active_offsets = {CHANGELOG: 3}


class FakeTables:
    recovery = FakeRecovery()


class FakeApp:
    in_recovery = False
    tables = FakeTables()
    rebalancing = False
    consumer_generation_id = 3
    topics = FakeTopics()
    flow_control = FakeFlow()


@dataclass
class FakeConsumer:
    """The attributes of Faust's consumer that the guard reads and wraps, and the calls it makes."""

    _committed_offset: dict[TP, int | None] = field(default_factory=lambda: defaultdict(lambda: None))
    _acked: dict[TP, list[int]] = field(default_factory=dict)
    _acked_index: dict[TP, set[int]] = field(default_factory=lambda: defaultdict(set))
    _unacked_messages: set[Msg] = field(default_factory=set)
    _read_offset: Any = None
    _paused_partitions: set[TP] = field(default_factory=set)
    _active_partitions: set[TP] = field(default_factory=set)
    flow_active: bool = True
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)
    ends: dict[TP, int] = field(default_factory=dict)
    log_starts: dict[TP, int] = field(default_factory=dict)
    committed_by_group: dict[TP, int] = field(default_factory=dict)
    app: Any = field(default_factory=FakeApp)

    def _new_offset(self, tp: TP) -> int | None:
        raise AssertionError("the guard replaces Faust's rule")

    async def callback(self, message: Msg) -> None:
        self.delivered.append(message.offset)

    async def perform_seek(self) -> None:
        # Faust's own: committed offsets above 0 become known, 0 or none stay None.
        for tp, offset in self.committed_by_group.items():
            self._committed_offset[tp] = offset or None

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._committed_offset.pop(tp, None)

    def assignment(self) -> set[TP]:
        return {RAW, CHANGELOG}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.log_starts.get(tp, 0) for tp in tps}

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in tps if tp in self.ends}

    def resume_partitions(self, tps: set[TP]) -> None:
        self._paused_partitions -= tps

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.extend(partitions.items())


def acked_by_faust(consumer: FakeConsumer, tp: TP, *offsets: int) -> None:
    consumer._acked.setdefault(tp, []).extend(offsets)
    consumer._acked_index[tp].update(offsets)


def handle(guard: OffsetGuard, consumer: FakeConsumer, tp: TP, *offsets: int) -> None:
    """What a stage agent does: handles the record, marks it, then Faust's stream acknowledges it."""
    for offset in offsets:
        guard.handled(Msg(tp, offset))
        acked_by_faust(consumer, tp, offset)


def test_faust_alone_commits_past_a_record_its_stream_skipped() -> None:
    """The loss the guard exists for: Faust's stream acknowledges a record it skips during a rebalance,
    and Faust's own rule then commits past it."""
    faust_view = FakeConsumer()
    faust_view._committed_offset[RAW] = 10
    faust_view._acked[RAW] = [10, 11, 12, 13]  # 10 skipped by the stream (acknowledged), 11-13 handled
    faust_view._gap = defaultdict(lambda: None)  # type: ignore[attr-defined]
    assert FaustConsumer._new_offset(faust_view, RAW) == 14  # type: ignore[arg-type]

    consumer = FakeConsumer()
    consumer._committed_offset[RAW] = 10
    guard = OffsetGuard(consumer)
    acked_by_faust(consumer, RAW, 10)
    handle(guard, consumer, RAW, 11, 12, 13)
    assert guard.new_offset(RAW) is None
    assert guard.skipped_acks == 1
    handle(guard, consumer, RAW, 10)  # read again and handled this time
    assert guard.new_offset(RAW) == 14
    consumer._committed_offset[RAW] = 14  # what Faust records once the commit went through
    assert guard.new_offset(RAW) is None
    assert consumer._acked[RAW] == [] and guard.done[RAW] == set()  # bookkeeping does not grow


async def test_a_commit_that_did_not_go_through_is_no_hole() -> None:
    """With the broker away, a commit fails and Faust's committed offset stays: the handled records are
    still owed a commit, not a re-read (seen: a partition read again from 0 after a broker bounce)."""
    consumer = FakeConsumer()
    guard = OffsetGuard(consumer)
    await consumer.perform_seek()
    handle(guard, consumer, RAW, 0, 1, 2)
    assert guard.new_offset(RAW) == 3  # the commit is attempted, fails, nothing is recorded
    handle(guard, consumer, RAW, 3)
    assert guard.new_offset(RAW) == 4
    for _ in range(3):
        await guard.mend()
    assert consumer.seeks == [] and guard.rereads == 0


def test_commit_stops_at_the_first_record_not_handled() -> None:
    consumer = FakeConsumer()
    consumer._committed_offset[RAW] = 10
    guard = OffsetGuard(consumer)
    handle(guard, consumer, RAW, 10, 11, 13)
    assert guard.new_offset(RAW) == 12
    consumer._committed_offset[RAW] = 12  # what Faust records after the commit
    handle(guard, consumer, RAW, 12)
    assert guard.new_offset(RAW) == 14


async def test_no_commit_while_the_start_of_an_uncommitted_partition_is_unknown() -> None:
    """A partition the group never committed starts at its log start, not at the first record seen:
    records dropped before the first one that arrived are owed too."""
    consumer = FakeConsumer(ends={RAW: 8})
    guard = OffsetGuard(consumer)
    await consumer.callback(Msg(RAW, 5))  # 0-4 dropped before they reached the streams
    handle(guard, consumer, RAW, 5, 6)
    assert guard.new_offset(RAW) is None  # Faust has not even read the committed offsets yet
    await consumer.perform_seek()
    await guard.mend()  # learns the log start: 0
    assert guard.base(RAW) == 0
    assert guard.new_offset(RAW) is None
    await guard.mend()
    assert consumer.seeks == [(RAW, 0)]  # the hole 0-4, read again on the second check
    handle(guard, consumer, RAW, 0, 1, 2, 3, 4)
    assert guard.new_offset(RAW) == 7


async def test_a_hole_being_handled_is_left_alone() -> None:
    consumer = FakeConsumer()
    consumer._committed_offset[RAW] = 10
    guard = OffsetGuard(consumer)
    handle(guard, consumer, RAW, 11, 12)
    consumer._unacked_messages.add(Msg(RAW, 10))  # offset 10 is in a handler right now
    for _ in range(3):
        await guard.mend()
    assert consumer.seeks == []
    assert guard.new_offset(RAW) is None


async def test_records_waiting_at_the_tail_that_never_come_are_a_stall(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Records wait beyond the committed offset (the broker's end offset says so), the streams never got
    them and nothing is handled: after the stall time it is reported, counted and read again."""
    now = [0.0]
    counted = REGISTRY.get_sample_value("wirewatch_partition_stalls_total", {"topic": RAW.topic}) or 0.0
    consumer = FakeConsumer(ends={RAW: 55, CHANGELOG: 16})
    consumer._committed_offset[RAW] = 40
    consumer._paused_partitions.add(RAW)
    # A table's changelog, read once by recovery and quiet since: never a stall of the streams.
    consumer._committed_offset[CHANGELOG] = 0
    guard = OffsetGuard(consumer, clock=lambda: now[0])
    await guard.mend()
    now[0] = OffsetGuard.STALL_SECONDS - 1
    await guard.mend()
    assert consumer.seeks == [] and guard.stalls == 0
    consumer._unacked_messages.add(Msg(RAW, 40))  # a handler busy with it: not a stall
    now[0] = OffsetGuard.STALL_SECONDS + 5
    await guard.mend()
    assert consumer.seeks == []
    consumer._unacked_messages.clear()  # let go without being handled: waiting again from now
    await guard.mend()
    assert consumer.seeks == []
    now[0] += OffsetGuard.STALL_SECONDS
    with caplog.at_level(logging.WARNING, "wirewatch"):
        await guard.mend()
    assert consumer.seeks == [(RAW, 40)] and RAW not in consumer._paused_partitions
    assert guard.stalls == 1
    assert REGISTRY.get_sample_value("wirewatch_partition_stalls_total", {"topic": RAW.topic}) == counted + 1
    assert "stall: " in caplog.text and "15 record(s) waiting (offsets 40-54)" in caplog.text


async def test_a_backlog_queued_for_a_slow_agent_is_no_stall() -> None:
    now = [0.0]
    consumer = FakeConsumer(ends={RAW: 55})
    consumer._committed_offset[RAW] = 40
    guard = OffsetGuard(consumer, clock=lambda: now[0])
    for offset in range(40, 55):
        await guard.on_message(Msg(RAW, offset))  # all delivered, queued behind other work
    for t in (0.0, 100.0, 1000.0):
        now[0] = t
        await guard.mend()
    assert consumer.seeks == [] and guard.stalls == 0


async def test_a_stall_while_tables_recover_is_reported_not_read_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    consumer = FakeConsumer(ends={RAW: 30})
    consumer._committed_offset[RAW] = 20
    consumer.app.in_recovery = True
    guard = OffsetGuard(consumer, clock=lambda: now[0])
    await guard.mend()
    now[0] = OffsetGuard.STALL_SECONDS + 1
    with caplog.at_level(logging.WARNING, "wirewatch"):
        await guard.mend()
    assert guard.stalls == 1 and consumer.seeks == []
    assert "table recovery has not finished" in caplog.text
    assert "recovery waits for (applied, needed): {TP(topic='wirewatch-articles-changelog'" in caplog.text
    now[0] += 1
    await guard.mend()
    assert guard.stalls == 1  # reported again only after another stall period


async def test_a_partition_read_to_its_end_is_no_stall() -> None:
    now = [0.0]
    consumer = FakeConsumer(ends={RAW: 55})
    consumer._committed_offset[RAW] = 55
    guard = OffsetGuard(consumer, clock=lambda: now[0])
    for t in (0.0, 100.0, 1000.0):
        now[0] = t
        await guard.mend()
    assert consumer.seeks == [] and guard.stalls == 0


async def test_a_revoked_partition_is_forgotten() -> None:
    consumer = FakeConsumer()
    consumer._committed_offset[RAW] = 10
    guard = OffsetGuard(consumer)
    handle(guard, consumer, RAW, 11)
    await consumer.on_partitions_revoked({RAW})
    assert RAW not in guard.done and guard.base(RAW) is None


class RecordingThread:
    def __init__(self) -> None:
        self.asked: list[Any] = []

    async def getmany(self, active: Any, timeout: float) -> dict[Any, Any]:
        self.asked.append(active)
        return {}


async def test_the_consumer_thread_gets_a_copy_of_the_active_partitions() -> None:
    """Faust's live set changes on this thread while aiokafka reads it on the other; emptied by a pause,
    aiokafka handed over the records of every partition. The thread must get a copy."""
    consumer = _Consumer.__new__(_Consumer)
    thread = RecordingThread()
    consumer._thread = thread  # type: ignore[assignment]
    live = {RAW}
    await consumer._getmany(live, 1.0)
    live.clear()  # a pause, while the fetch would still be waiting
    assert thread.asked == [frozenset({RAW})]
    assert thread.asked[0] is not live


def test_the_counters_are_served_on_metrics() -> None:
    import urllib.request

    for counter in (metrics.STALLS, metrics.UNHANDLED_ACKS):
        counter.labels("t").inc(0)
    metrics.REREADS.labels("t", "hole").inc(0)
    port = metrics.serve("127.0.0.1:0")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        body = resp.read().decode()
    for name in ("wirewatch_partition_stalls", "wirewatch_partition_rereads", "wirewatch_unhandled_acks"):
        assert f"# TYPE {name}_total counter" in body


async def test_a_short_run_commits_at_exit_without_waiting_for_a_check() -> None:
    """`run --once` may end before the first periodic check: the start of a partition the group never
    committed is learned when Faust reads the committed offsets, so the commit at exit can happen."""
    consumer = FakeConsumer()
    guard = OffsetGuard(consumer)
    await consumer.perform_seek()
    handle(guard, consumer, RAW, 0, 1, 2)
    assert guard.new_offset(RAW) == 3
