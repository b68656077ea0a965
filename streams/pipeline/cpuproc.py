"""Child processes: CPU slots with deadlines, and ending with the parent (no Faust, no spaCy at import)."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, TypeVar

from streams import metrics
from streams.reasons import ReasonClass

if TYPE_CHECKING:
    from streams.names.match import Matcher

T = TypeVar("T")
log = logging.getLogger("wirewatch")

_PR_SET_PDEATHSIG = 1


def parent_death_signal(sig: int) -> bool:
    """Ask Linux to send this process `sig` when its parent dies; False where that is not available."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, sig) == 0)
    except (OSError, AttributeError):
        return False


def _die_with(parent: int) -> None:
    # A worker killed with SIGKILL cannot shut its pool down; without this its CPU processes would live
    # on as orphans, each holding a loaded spaCy model.
    if parent_death_signal(signal.SIGKILL) and os.getppid() == parent:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def init(parent: int, model: str, matmul: str, matcher: Matcher | None = None) -> None:
    """Initializer of each CPU process: end with the parent, then load the model before any work, and
    keep the watchlist's matcher for `analyse_here`."""
    _die_with(parent)
    # Imported and warmed here, before any task: a task's deadline should not pay for trafilatura's import
    # or the language model's load (a fresh process's first page took over 1 s on a busy machine and was
    # dead-lettered as a timeout), and the broker module uses this one without wanting spaCy.
    import streams.ingest.clean
    import streams.ingest.feeds

    streams.ingest.clean.warm()

    if model:
        from streams.names.ner import use_numpy_matmul, warm

        if matmul == "numpy":
            use_numpy_matmul()
        warm(model)
    if matcher is not None:
        from streams.names.analysis import use_matcher

        use_matcher(matcher)


def _spawn(model: str, matmul: str, matcher: Matcher | None) -> ProcessPoolExecutor:
    """One process for feedparser, trafilatura and spaCy, the model loaded before any work."""
    # One thread of BLAS per CPU process: each process is one core's worth of work, and OpenBLAS's own
    # threads (numpy matmul) would fight the other processes for the cores (measured: numpy matmul 8%
    # slower than blis with them, instead of faster). Read by each child as it loads OpenBLAS.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # Spawned, not forked: the parent runs an event loop and Kafka client threads that must not be copied.
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init,
        initargs=(os.getpid(), model, matmul, matcher),
    )


def _broke(future: asyncio.Future[Any]) -> bool:
    """The task's process went down (killed, crashed) or the task was dropped with it."""
    return future.cancelled() or isinstance(future.exception(), BrokenProcessPool)


def _retrieved(future: asyncio.Future[Any]) -> None:
    # A task given up on (its deadline passed, its process killed) still ends with an error: read here, so
    # asyncio does not log it as never retrieved.
    if not future.cancelled():
        future.exception()


class WorkFailed(Exception):
    """Work on a CPU slot that ran past its deadline or took its process down; reason_class says which."""

    def __init__(self, reason_class: ReasonClass, message: str) -> None:
        super().__init__(message)
        self.reason_class = reason_class


class Slots:
    """CPU processes with deadlines: each runs one task at a time, and a task's deadline counts only its
    own run.

    A task past its deadline (a crafted page that keeps lxml busy, a feed whose regexes backtrack) cannot
    be interrupted inside C code, so its process is killed and replaced; the other slots go on untouched.
    """

    #: Tasks handed to one process at once. With one, a process sat idle from the end of each task until
    #: the event loop had taken the result and sent the next (measured on 2 cores: the CPU processes busy
    #: 40% of the time while the agents queued for them); with two, the next is already in its pipe.
    DEPTH = 2

    def __init__(self, size: int, model: str, matmul: str = "numpy", matcher: Matcher | None = None) -> None:
        self.size = size
        self.model = model
        self.matmul = matmul
        #: Pickled into each process once, at its start (a few tens of KB), not with every article.
        self.matcher = matcher
        self._executors: list[ProcessPoolExecutor | None] = [None] * size
        #: Each slot's tasks in the order handed to its process, and how many times it was replaced.
        self._inflight: list[list[asyncio.Future[Any]]] = [[] for _ in range(size)]
        self._generation = [0] * size
        self._starting = [asyncio.Lock() for _ in range(size)]
        #: Tasks handed to each slot and not yet ended; all slots together take size * DEPTH at once.
        self._load = [0] * size
        self._turn = 0
        self._room = asyncio.Semaphore(size * self.DEPTH)

    async def _executor(self, slot: int) -> ProcessPoolExecutor:
        async with self._starting[slot]:
            executor = self._executors[slot]
            if executor is None:
                executor = self._executors[slot] = _spawn(self.model, self.matmul, self.matcher)
                # Started (and its model loaded) before any deadline runs: start-up is not the task's time.
                await asyncio.get_running_loop().run_in_executor(executor, os.getpid)
            return executor

    def _replace(self, slot: int, generation: int) -> None:
        """Kill the slot's process, unless that was done already since `generation`."""
        if self._generation[slot] != generation:
            return
        self._generation[slot] += 1
        executor, self._executors[slot] = self._executors[slot], None
        if executor is None:
            return
        processes: dict[int, Any] = getattr(executor, "_processes", None) or {}
        for process in list(processes.values()):
            process.kill()
        metrics.CPU_RESTARTS.inc()
        executor.shutdown(wait=False, cancel_futures=True)

    async def run_within(
        self, deadline: float | None, what: str, crash_class: ReasonClass, call: Callable[[], T]
    ) -> T:
        """call() on a slot; WorkFailed('timeout') past deadline seconds of its own run."""
        await self._room.acquire()
        # The least loaded slot (an idle process before one with a task ahead of this one), in turn among
        # equals, so that work spreads over every process.
        slot = min(range(self.size), key=lambda i: (self._load[i], (i - self._turn) % self.size))
        self._turn = slot + 1
        self._load[slot] += 1
        try:
            while True:
                executor = await self._executor(slot)
                generation = self._generation[slot]
                ahead = list(self._inflight[slot])
                future = asyncio.get_running_loop().run_in_executor(executor, call)
                future.add_done_callback(_retrieved)
                self._inflight[slot].append(future)
                try:
                    if ahead:
                        # Queued behind another task: its own deadline starts once the process is done
                        # with that one.
                        await asyncio.wait(ahead)
                        if self._generation[slot] != generation or any(_broke(f) for f in ahead):
                            # The process went down under the task ahead, so this one never ran: its
                            # future ends too, and it runs again on the replacement.
                            await asyncio.wait([future])
                            if not _broke(future):
                                return future.result()
                            self._replace(slot, generation)
                            continue
                    done, _ = await asyncio.wait([future], timeout=deadline)
                    if not done:
                        log.warning("%s ran past %.0f s: its CPU process is replaced", what, deadline)
                        metrics.CPU_FAILURES.labels("timeout").inc()
                        self._replace(slot, generation)
                        raise WorkFailed("timeout", f"{what} ran past its limit of {deadline:g} s")
                    if _broke(future):
                        metrics.CPU_FAILURES.labels("crash").inc()
                        self._replace(slot, generation)
                        raise WorkFailed(crash_class, f"{what} took its CPU process down")
                    return future.result()
                finally:
                    self._inflight[slot].remove(future)
        finally:
            self._load[slot] -= 1
            self._room.release()

    async def warm(self) -> None:
        """Start every slot's process, its model loaded, before any record arrives."""
        await asyncio.gather(*(self._executor(i) for i in range(self.size)))

    def shutdown(self) -> None:
        for slot, executor in enumerate(self._executors):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
                self._executors[slot] = None
