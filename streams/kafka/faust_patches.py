"""Where wirewatch corrects Faust's consumer: it commits only what an agent handled and reads again the rest.

Written against faust-streaming 0.15.3 and aiokafka 0.14.0 (pinned below 0.16 and 0.15 in pyproject.toml).
tests/unit/test_faust_patches.py fails if any private attribute used here disappears. Touched:

- faust Consumer: ``_new_offset`` (replaced), ``callback``, ``perform_seek`` and ``on_partitions_revoked``
  (wrapped), ``_read_offset`` (replaced by an empty map), ``_committed_offset``, ``_acked``,
  ``_acked_index``, ``_unacked_messages``, ``_paused_partitions``, ``_active_partitions``, ``_thread``,
  ``_getmany`` (overridden), ``getmany`` (wrapped);
- faust AIOKafkaConsumerThread: ``_create_worker_consumer`` (overridden), ``_fetch_records`` (wrapped),
  ``_ensure_consumer``, ``_consumer``, ``thread_loop``;
- aiokafka AIOKafkaConsumer: ``_fetch_max_wait_ms``, ``_fetcher``, ``_subscription`` (a partition's
  ``subscription.assignment.state_value(tp)``: ``has_valid_position``, ``position``) and, for diagnosis
  only, the fetcher's ``_fetch_task``, ``_in_flight``, ``_pending_tasks``, ``_records``, ``_subscriptions``;
- faust Recovery (diagnosis only): ``active_highwaters``, ``active_offsets``;
- faust App (WireApp): ``_new_consumer``, ``_new_transport``, ``_new_producer_transport`` (overridden);
- faust.streams: ``_current_event``, the context variable that tables read (`handling`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver

from streams import metrics

log = logging.getLogger("wirewatch")


@contextlib.contextmanager
def handling(event: Any) -> Iterator[None]:
    """Make `event` the record being handled in this task, as a table write asks, for a batch taken from
    a stream (Faust sets it only while its own iteration yields a record). Only this task's context
    changes: the stream's background reader, another task, keeps its own."""
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)


class _IdempotentProducer(aiokafka_driver.Producer):
    # Faust asks aiokafka for idempotence only inside exactly-once transactions; we want it always.
    def _settings_extra(self) -> dict[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class _ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust fixes the fetch wait at 1.5 s. The embedded broker holds a fetch that found nothing for the
        # whole wait even when records arrive meanwhile, so every hop of the pipeline cost up to 1.5 s
        # (measured with 30 articles at once on two workers: median download-to-alert 4.8 s, 1.9 s with
        # 50 ms; Apache Kafka answers a waiting fetch as soon as records arrive, and merely sees more
        # empty fetches with a short wait).
        consumer._fetch_max_wait_ms = int(getattr(self.app, "fetch_wait", 1.5) * 1000)
        return consumer

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Batch:
        records = await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )
        # Where aiokafka stands on each partition right after handing these over: nothing else has run
        # on this thread since, so a later put_back can tell whether anyone has moved it meanwhile.
        return Batch(records, {tp: _position(consumer, tp) for tp in records})

    async def put_back(self, back: Mapping[Any, tuple[int, int]]) -> list[Any]:
        """Seek each partition back to the given offset if it still stands where the batch left it."""
        return list(await self.call_thread(self._put_back, self._ensure_consumer(), back))

    async def _put_back(self, consumer: Any, back: Mapping[Any, tuple[int, int]]) -> list[Any]:
        moved = []
        for tp, (offset, end) in back.items():
            # A partition sought since (table recovery to its start, streams to their committed offset)
            # or no longer assigned stays where it is: that seek decides what is read next.
            if _position(consumer, tp) == end:
                consumer.seek(tp, offset)
                moved.append(tp)
        return moved


def _position(consumer: Any, tp: Any) -> int | None:
    """aiokafka's position on an assigned partition, without waiting (None when it has none)."""
    subscription = consumer._subscription
    if not subscription.is_assigned(tp):
        return None
    state = subscription.subscription.assignment.state_value(tp)
    return int(state.position) if state.has_valid_position else None


class Batch(dict[Any, list[Any]]):
    """Records the consumer thread took from aiokafka, and aiokafka's position after them (`ends`)."""

    def __init__(self, records: Mapping[Any, list[Any]], ends: Mapping[Any, int | None]) -> None:
        super().__init__(records)
        self.ends = dict(ends)

    def undelivered(self, yielded: Mapping[Any, int]) -> dict[Any, tuple[int, int]]:
        """For each partition with records after the last one handed to the streams (`yielded`): the
        first such offset, and where aiokafka stood after the batch."""
        back: dict[Any, tuple[int, int]] = {}
        for tp, records in self.items():
            last, end = yielded.get(tp), self.ends.get(tp)
            rest = [r.offset for r in records if last is None or r.offset > last]
            if rest and end is not None:
                back[tp] = (rest[0], end)
        return back


class _Consumer(aiokafka_driver.Consumer):
    _batch: Batch | None = None

    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _getmany(self, active_partitions: set[Any] | None, timeout: float) -> Any:
        # Faust hands the consumer thread its live set of active partitions, which this thread keeps
        # changing (pause, resume, rebalance) while aiokafka reads it on the other. aiokafka returns the
        # records of every partition when that set is empty: emptied by a pause while a fetch waited, it
        # handed over records of paused partitions, which Faust then dropped after their offsets had
        # been consumed. A copy is what the fetch may return, whatever happens here meanwhile.
        snapshot = None if active_partitions is None else frozenset(active_partitions)
        batch = await super()._getmany(snapshot, timeout)  # type: ignore[arg-type]
        self._batch = batch if isinstance(batch, Batch) else None
        return batch

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        # Faust drops the rest of a batch when a rebalance stops the flow, a newer generation begins or a
        # partition is paused while the batch is on its way, although aiokafka has already moved past
        # those records. A stream's partition is sought back to its committed offset later; a table's
        # changelog is not: recovery, which had sought it to its start just before, then waited for
        # records that never came, and the worker stayed in recovery with every stream paused (the
        # stall seen after a worker was killed). What Faust does not hand to the streams goes back.
        self._batch = None
        yielded: dict[Any, int] = {}
        async for tp, message in super().getmany(timeout):
            yielded[tp] = message.offset
            yield tp, message
        batch, self._batch = self._batch, None
        back: dict[Any, tuple[int, int]] = batch.undelivered(yielded) if batch is not None else {}
        # A consumer that is stopping reads nothing more: its successor starts from the commit.
        if back and not self.should_stop:
            moved = await cast(_ConsumerThread, self._thread).put_back(back)
            if moved:
                log.info(
                    "%d partition(s) had records fetched but not delivered (rebalance or pause); "
                    "reading them again: %s",
                    len(moved),
                    ", ".join(f"{tp.topic}[{tp.partition}]@{back[tp][0]}" for tp in sorted(moved)),
                )


class Transport(aiokafka_driver.Transport):
    Consumer = _Consumer


class IdempotentTransport(Transport):
    Producer = _IdempotentProducer


class _NoReadOffsets(dict[Any, Any]):
    """Stands in for Faust's per-partition "highest offset read" map, always empty.

    Faust uses that map to drop a message whose offset is below one already read and to count an offset
    jump as acknowledged. After a rebalance a prefetched message can arrive ahead of the ones re-read from
    the committed offset: Faust then counted the offsets in between as done, dropped them when they came,
    and committed them unprocessed (measured: articles lost when a worker was killed). Without the map
    every message is delivered; the price is a few records handled twice, which the dedupe state absorbs.
    """

    def __getitem__(self, key: Any) -> None:
        return None

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


class OffsetGuard:
    """Commits a partition only up to the first record an agent has not handled, and reads again what the
    streams dropped or skipped; reports a partition whose records wait while nothing is handled.

    Faust's own bookkeeping counts a record as done when its stream acknowledges it, and its streams
    acknowledge, unhandled, every record they take during a rebalance (flow control suspended, or a
    consumer generation newer than the record's): Faust's commit then moved past records no agent ever
    saw. Faust also drops fetched records of a partition paused or reassigned mid-batch, and after a
    rebalance seeks back only partitions with a committed offset above 0. Here the commit follows the
    agents' own record of what they handled (`handled`), and the records nobody handled are read again.
    """

    #: Seconds a partition may have records waiting beyond its committed offset while none arrives and
    #: none is being handled, before it is reported as stalled and read again.
    STALL_SECONDS = 20.0

    def __init__(self, consumer: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.consumer = consumer
        self.clock = clock
        #: Offsets at or after the partition's base that an agent has handled (dead letters included).
        self.done: dict[Any, set[int]] = {}
        #: Where reading starts for a partition the group never committed: the start of its log.
        self.start: dict[Any, int] = {}
        #: Partitions whose committed offset Faust has read since they were assigned.
        self.known: set[Any] = set()
        #: The broker's end offset of each assigned partition, asked at every check.
        self.ends: dict[Any, int] = {}
        self.last_activity: dict[Any, float] = {}
        #: The highest offset of each partition handed to the streams since it was last read from the base.
        self.delivered: dict[Any, int] = {}
        self.waiting_since: dict[Any, float] = {}
        self.suspect: dict[Any, int] = {}
        self.reported: dict[Any, float] = {}
        #: What an operator counts: stall reports, re-reads of holes, acknowledgements Faust gave unhandled.
        self.stalls = 0
        self.rereads = 0
        self.skipped_acks = 0
        self._perform_seek = consumer.perform_seek
        self._revoked = consumer.on_partitions_revoked
        self._callback = consumer.callback
        consumer._read_offset = _NoReadOffsets()
        consumer._new_offset = self.new_offset
        consumer.callback = self.on_message
        consumer.perform_seek = self.perform_seek
        consumer.on_partitions_revoked = self.on_partitions_revoked

    # --- wrapped Faust consumer methods -------------------------------------------------------------
    async def on_message(self, message: Any) -> None:
        tp = message.tp
        self.last_activity[tp] = self.clock()
        self.delivered[tp] = max(self.delivered.get(tp, -1), message.offset)
        await self._callback(message)

    async def perform_seek(self) -> None:
        await self._perform_seek()
        assigned = self.consumer.assignment()
        self.known.update(assigned)
        # Before the streams resume: a short run (`run --once`) may end before the first periodic check,
        # and without its start a partition the group never committed could not be committed at exit.
        await self._learn_starts({tp for tp in assigned if self._streamed(tp)})

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        for tp in revoked:
            self.forget(tp)
        await self._revoked(revoked)

    def forget(self, tp: Any) -> None:
        tables = (
            self.done,
            self.start,
            self.ends,
            self.last_activity,
            self.delivered,
            self.waiting_since,
            self.suspect,
            self.reported,
        )
        for table in tables:
            table.pop(tp, None)
        self.known.discard(tp)

    # --- what the agents and Faust's commit call ----------------------------------------------------
    def handled(self, message: Any) -> None:
        """An agent is done with this record: it may be committed once every record before it is."""
        tp = message.tp
        self.done.setdefault(tp, set()).add(message.offset)
        self.last_activity[tp] = self.clock()

    def lags(self) -> dict[Any, int]:
        """Per assigned partition, the records past the first offset not yet committed."""
        out = {}
        for tp in self.consumer.assignment():
            base, end = self.base(tp), self.consumer.highwater(tp)
            if base is not None and end is not None:
                out[tp] = max(0, int(end) - base)
        return out

    def base(self, tp: Any) -> int | None:
        """The first offset of the partition not yet committed, or None while that is not known."""
        committed: int | None = self.consumer._committed_offset[tp]
        if committed is not None:
            return committed
        return self.start.get(tp) if tp in self.known else None

    def new_offset(self, tp: Any) -> int | None:
        """The offset to commit: one past the run of handled records that starts at the base."""
        base = self.base(tp)
        done = self.done.get(tp)
        if base is not None and done:
            # Forget only what a commit has covered: Faust records the committed offset once a commit
            # went through, and a commit attempted while the broker was away leaves the base where it was.
            done.difference_update([o for o in done if o < base])
            acked = self.consumer._acked.get(tp)
            if acked:
                acked[:] = [o for o in acked if o >= base]
            index = self.consumer._acked_index.get(tp)
            if index:
                index.difference_update([o for o in index if o < base])
        self._note_skipped_acks(tp, base, done or set())
        if base is None or not done or base not in done:
            return None
        end = base
        while end in done:
            end += 1
        return end

    def _note_skipped_acks(self, tp: Any, base: int | None, done: set[int]) -> None:
        """Log (once per run of offsets) the records Faust acknowledged though no agent handled them."""
        acked = self.consumer._acked.get(tp) or ()
        skipped = sorted(o for o in acked if o not in done and (base is None or o >= base))
        if not skipped:
            return
        self.skipped_acks += len(skipped)
        metrics.UNHANDLED_ACKS.labels(tp.topic).inc(len(skipped))
        log.warning(
            "%s: Faust acknowledged offsets %s without an agent handling them; they are not committed "
            "and will be read again",
            tp,
            _ranges(skipped),
        )
        # Noted once, and counted as never delivered: the hole they leave, or at a partition's tail the
        # stall check, gets them read again.
        self.delivered[tp] = min(self.delivered.get(tp, -1), skipped[0] - 1)
        acked_list = self.consumer._acked.get(tp)
        if acked_list is not None:
            acked_list[:] = [o for o in acked_list if o in done]

    # --- the periodic check -------------------------------------------------------------------------
    async def mend(self) -> None:
        """Every few seconds: learn start and end offsets, re-read holes, report and mend stalls."""
        assigned = {tp for tp in self.consumer.assignment() if self._streamed(tp)}
        for tp in [tp for tp in self.done if tp not in assigned]:
            self.forget(tp)
        await self._learn_offsets(assigned)
        for tp in sorted(assigned):
            await self._mend_hole(tp)
        await self._check_stalls(assigned)

    def _streamed(self, tp: Any) -> bool:
        # Only the agents' topics: table changelogs are read by Faust's recovery, not by streams.
        return bool(self.consumer.app.topics.acks_enabled_for(tp.topic))

    async def _learn_starts(self, assigned: set[Any]) -> None:
        """The log start of each known partition the group never committed: where its reading begins."""
        new = [tp for tp in assigned if tp in self.known and tp not in self.start]
        if new and any(self.consumer._committed_offset[tp] is None for tp in new):
            self.start.update(await self._ask("start", self.consumer.earliest_offsets(*new)))

    async def _learn_offsets(self, assigned: set[Any]) -> None:
        await self._learn_starts(assigned)
        if assigned:
            self.ends.update(await self._ask("end", self.consumer.highwaters(*assigned)))

    @staticmethod
    async def _ask(what: str, call: Awaitable[Mapping[Any, int | None]]) -> dict[Any, int]:
        """Offsets from the broker; none while it is away or a rebalance is under way (the next check asks
        again)."""
        try:
            found = await asyncio.wait_for(call, 10)
        except Exception as exc:
            log.debug("%s offsets not learned: %s: %s", what, type(exc).__name__, exc)
            return {}
        return {tp: int(o) for tp, o in found.items() if o is not None}

    def _in_flight(self, tp: Any, start: int, end: int) -> bool:
        return any(m.tp == tp and start <= m.offset < end for m in list(self.consumer._unacked_messages))

    async def _mend_hole(self, tp: Any) -> None:
        """Read again, from the base, a partition with unhandled records below handled ones."""
        base, done = self.base(tp), self.done.get(tp)
        if base is None or not done or min(done) <= base or self._in_flight(tp, base, min(done)):
            self.suspect.pop(tp, None)
            return
        if self.suspect.get(tp) != base:
            self.suspect[tp] = base  # seen once; re-read only if it is still there at the next check
            return
        log.warning(
            "offsets %d-%d of %s were never handled (dropped or skipped by the stream); reading them again",
            base,
            min(done) - 1,
            tp,
        )
        self.suspect.pop(tp)
        self.rereads += 1
        metrics.REREADS.labels(tp.topic, "hole").inc()
        await self._reread(tp, base)

    async def _check_stalls(self, assigned: set[Any]) -> None:
        """Report a partition whose records wait while nothing is handled; read it again if it can be."""
        now = self.clock()
        for tp in sorted(assigned):
            base, end = self.base(tp), self.ends.get(tp)
            # Records waiting beyond the base that the streams never got, or not all of them: a backlog
            # queued for a slow agent is no stall, and neither is a record in a handler.
            if (
                base is None
                or end is None
                or end <= base
                or self.delivered.get(tp, -1) >= end - 1
                or self._in_flight(tp, base, end)
            ):
                self.waiting_since.pop(tp, None)
                continue
            # Quiet since the records began to wait, or since the last one arrived or was handled.
            began = self.waiting_since.setdefault(tp, now)
            since = max(began, self.last_activity.get(tp, began))
            quiet = now - since
            if quiet < self.STALL_SECONDS or now - self.reported.get(tp, -1e9) < self.STALL_SECONDS:
                continue
            self.reported[tp] = now
            self.stalls += 1
            metrics.STALLS.labels(tp.topic).inc()
            metrics.stalled()
            recovering = bool(self.consumer.app.in_recovery)
            log.warning(
                "stall: %s has %d record(s) waiting (offsets %d-%d) and nothing handled for %.0f s; %s\n%s",
                tp,
                end - base,
                base,
                end - 1,
                quiet,
                "table recovery has not finished" if recovering else "reading it again",
                self.describe(),
            )
            if not recovering:
                metrics.REREADS.labels(tp.topic, "stall").inc()
                await self._reread(tp, base)

    async def _reread(self, tp: Any, offset: int) -> None:
        consumer = self.consumer
        if tp in consumer._paused_partitions and not consumer.app.in_recovery:
            consumer.resume_partitions({tp})
        self.last_activity[tp] = self.clock()
        self.delivered[tp] = offset - 1
        # seek_wait, not seek: Faust's seek calls into aiokafka from this thread while the consumer
        # lives on a thread of its own, and a fetcher woken from the wrong thread may never wake
        # (seen once: a worker stopped consuming right after re-reading a hole that way).
        await consumer.seek_wait({tp: offset})

    def describe(self) -> str:
        """What this consumer, its fetcher and its thread are doing, for a stall report or SIGUSR1."""
        c = self.consumer
        app = c.app
        active = c._active_partitions or set()
        lines = [
            f"  app: rebalancing {app.rebalancing}, in recovery {app.in_recovery}, generation "
            f"{app.consumer_generation_id}, flow {c.flow_active}, "
            f"flow control {app.flow_control.is_active()}, unacked {len(c._unacked_messages)}; "
            f"stall reports {self.stalls}, holes read again {self.rereads}, "
            f"acknowledged unhandled {self.skipped_acks}"
        ]
        thread = getattr(c, "_thread", None)
        inner = getattr(thread, "_consumer", None)
        fetcher = getattr(inner, "_fetcher", None)
        assignment = None
        if fetcher is not None:
            sub = fetcher._subscriptions.subscription
            assignment = sub.assignment if sub is not None else None
            lines.append(
                f"  fetcher: routine {'ended' if fetcher._fetch_task.done() else 'running'}, "
                f"requests in flight to nodes {sorted(fetcher._in_flight)}, "
                f"{len(fetcher._pending_tasks)} pending, {len(fetcher._records)} partition(s) buffered, "
                f"assignment {'active' if assignment is not None and assignment.active else 'none'}"
            )
        if app.in_recovery:
            recovery = app.tables.recovery
            waiting = {
                tp: (recovery.active_offsets.get(tp), hw)
                for tp, hw in recovery.active_highwaters.items()
                if hw is not None and (recovery.active_offsets.get(tp) or -1) < hw
            }
            lines.append(f"  recovery waits for (applied, needed): {waiting}")
        for tp in sorted(c.assignment()):
            state = ""
            if fetcher is not None and assignment is not None and tp in assignment.tps:
                st = assignment.state_value(tp)
                state = (
                    f", position {st._position}, fetched highwater {st.highwater}"
                    f"{', awaiting reset' if st.awaiting_reset else ''}"
                    f"{', buffered' if tp in fetcher._records else ''}"
                )
            lines.append(
                f"  {tp.topic}[{tp.partition}]: base {self.base(tp)}, end {self.ends.get(tp)}, "
                f"handled ahead {len(self.done.get(tp) or ())}, active {tp in active}, "
                f"paused {tp in c._paused_partitions}{state}"
            )
        loop = getattr(thread, "thread_loop", None)
        if loop is not None:
            for task in list(asyncio.all_tasks(loop)):
                frames = task.get_stack(limit=1)
                where = f"{frames[0].f_code.co_name}:{frames[0].f_lineno}" if frames else "?"
                lines.append(f"  consumer thread task {task.get_coro()!r} at {where}")
        return "\n".join(lines)


def _ranges(offsets: Iterable[int]) -> str:
    """1,2,3,7 -> "1-3, 7"."""
    out: list[str] = []
    run: list[int] = []
    for o in sorted(offsets):
        if run and o != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(o)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


class WireApp(faust.App):
    """A Faust app that never commits an offset it has not processed, with idempotent producers if asked."""

    idempotent = False
    fetch_wait = 1.5
    offset_guard: OffsetGuard | None = None
    #: Records waiting past the committed offset, per assigned partition (every 2 s; readiness reads it).
    lags: dict[Any, int] = {}

    _resumed: frozenset[Any] = frozenset()

    def _new_consumer(self) -> Any:
        consumer: Any = super()._new_consumer()
        self.offset_guard = OffsetGuard(consumer)
        return consumer

    def on_rebalance_end(self) -> None:
        super().on_rebalance_end()
        # The moment the agents may handle records of their new partitions again: what an operator (and
        # bench/faults.py) reads to know how long a worker's death left its partitions unattended.
        assigned = frozenset(
            tp for tp in self.consumer.assignment() if self.topics.acks_enabled_for(tp.topic)
        )
        log.info(
            "streams resumed after rebalance: %d partition(s), %d taken over",
            len(assigned),
            len(assigned - self._resumed),
        )
        self._resumed = assigned

    def _new_transport(self) -> Any:
        transport = IdempotentTransport if self.idempotent else Transport
        return transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        transport = IdempotentTransport if self.idempotent else Transport
        return transport(self.conf.broker_producer, self)
