"""Start-up of the CPU processes that run trafilatura and spaCy (kept free of Faust imports)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

from streams.stages.ner import warm

_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    # A worker killed with SIGKILL cannot shut its pool down; without this its CPU processes would live
    # on as orphans, each holding a loaded spaCy model.
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0 and os.getppid() == parent:
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def init(parent: int, model: str) -> None:
    """Initializer of each CPU process: end with the parent, then load the model before any work."""
    _die_with(parent)
    warm(model)
