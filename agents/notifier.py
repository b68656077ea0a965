"""notifier: hands each alert on the alerts topic to the configured destinations."""

from __future__ import annotations

from streams.app import Runtime
from streams.records import Alert

STAGE = "notifier"


async def handle(rt: Runtime, alert: Alert) -> str:
    for sink in rt.alert_sinks:
        await sink(alert)
    rt.progress.finish(alert.item_url, "alert")
    return "notified"
