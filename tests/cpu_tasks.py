"""Work for the CPU slot tests, in a module light enough that a fresh process imports it at once."""

from __future__ import annotations

import os
import time


def spin(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass  # stands for C code that no signal interrupts
    return "done"


def crash() -> str:
    os._exit(3)


def pid() -> int:
    return os.getpid()
