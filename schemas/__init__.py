"""The JSON Schema of every wirewatch topic's records: the public contract for downstream consumers."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load_schema(topic: str) -> dict[str, Any]:
    """The schema of a topic's record values, by canonical topic name (without any prefix)."""
    text = resources.files(__name__).joinpath(f"{topic}.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
