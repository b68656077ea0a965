"""Child processes: the CPU pool's start-up, and ending with the parent (no Faust, no spaCy at import)."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

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


def init(parent: int, model: str) -> None:
    """Initializer of each CPU process: end with the parent, then load the model before any work."""
    _die_with(parent)
    from streams.stages.ner import warm  # here, so the broker module can use this one without spaCy

    warm(model)


def spawn_pool(workers: int, model: str) -> ProcessPoolExecutor:
    """The pool that runs trafilatura and spaCy, each process with the model loaded before any work."""
    # Spawned, not forked: the parent runs an event loop and Kafka client threads that must not be copied.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init,
        initargs=(os.getpid(), model),
    )
