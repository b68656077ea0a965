"""Reading a whole topic back from a real broker, with a deadline instead of sleeps."""

from __future__ import annotations

from streams.broker import read_topic

__all__ = ["read_topic"]
