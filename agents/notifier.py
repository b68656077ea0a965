"""notifier: hands each alert on the alerts topic to the configured destinations."""

from __future__ import annotations

from streams.pipeline.progress import Finished
from streams.pipeline.runtime import Runtime
from streams.records import Alert

STAGE = "notifier"


async def handle(rt: Runtime, alert: Alert) -> str:
    for sink in rt.alert_sinks:
        await sink(alert)
    return Finished("alert")
