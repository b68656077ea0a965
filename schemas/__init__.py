"""The JSON Schema of every wirewatch topic's records: the public contract for downstream consumers."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

#: Internal topics whose records are those of a public topic (kept in step with streams.kafka.topics).
_SAME_AS = {"wirewatch.articles.dedupe": "wirewatch.articles.clean"}


def load_schema(topic: str) -> dict[str, Any]:
    """The schema of a topic's record values, by canonical topic name (without any prefix)."""
    topic = _SAME_AS.get(topic, topic)
    text = resources.files(__name__).joinpath(f"{topic}.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
