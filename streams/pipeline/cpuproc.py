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
from typing import Any, TypeVar

from streams import metrics
from streams.reasons import ReasonClass

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


def init(parent: int, model: str, matmul: str) -> None:
    """Initializer of each CPU process: end with the parent, then load the model before any work."""
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


def _spawn(model: str, matmul: str) -> ProcessPoolExecutor:
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
        initargs=(os.getpid(), model, matmul),
    )


class WorkFailed(Exception):
    """Work on a CPU slot that ran past its deadline or took its process down; reason_class says which."""

    def __init__(self, reason_class: ReasonClass, message: str) -> None:
        super().__init__(message)
        self.reason_class = reason_class


class Slots:
    """CPU processes that each run one task at a time, so a task's deadline counts only its own run.

    A task past its deadline (a crafted page that keeps lxml busy, a feed whose regexes backtrack) cannot
    be interrupted inside C code, so its process is killed and replaced; the other slots go on untouched.
    """

    def __init__(self, size: int, model: str, matmul: str = "numpy") -> None:
        self.size = size
        self.model = model
        self.matmul = matmul
        self._executors: list[ProcessPoolExecutor | None] = [None] * size
        self._free: asyncio.Queue[int] | None = None

    def _queue(self) -> asyncio.Queue[int]:
        if self._free is None:
            self._free = asyncio.Queue()
            for i in range(self.size):
                self._free.put_nowait(i)
        return self._free

    async def _executor(self, slot: int) -> ProcessPoolExecutor:
        executor = self._executors[slot]
        if executor is None:
            executor = self._executors[slot] = _spawn(self.model, self.matmul)
            # Started (and its model loaded) before any deadline runs: start-up is not the task's time.
            await asyncio.get_running_loop().run_in_executor(executor, os.getpid)
        return executor

    def _replace(self, slot: int) -> None:
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
        """call() on a free slot; WorkFailed('timeout') past deadline seconds of its own run."""
        free = self._queue()
        slot = await free.get()
        try:
            executor = await self._executor(slot)
            future = asyncio.get_running_loop().run_in_executor(executor, call)
            try:
                return await asyncio.wait_for(future, deadline)
            except TimeoutError:
                log.warning("%s ran past %.0f s: its CPU process is replaced", what, deadline)
                metrics.CPU_FAILURES.labels("timeout").inc()
                self._replace(slot)
                raise WorkFailed("timeout", f"{what} ran past its limit of {deadline:g} s") from None
            except BrokenProcessPool:
                metrics.CPU_FAILURES.labels("crash").inc()
                self._replace(slot)
                raise WorkFailed(crash_class, f"{what} took its CPU process down") from None
        finally:
            free.put_nowait(slot)

    async def warm(self) -> None:
        """Start every slot's process, its model loaded, before any record arrives."""
        await asyncio.gather(*(self._executor(i) for i in range(self.size)))

    def shutdown(self) -> None:
        for slot, executor in enumerate(self._executors):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
                self._executors[slot] = None
