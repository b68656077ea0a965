"""notifier: hands each alert on the alerts topic to the configured destinations."""

from __future__ import annotations

from collections.abc import AsyncIterator

from faust.types import StreamT

from streams.app import Runtime
from streams.records import Alert

STAGE = "notifier"


async def handle(rt: Runtime, alert: Alert) -> str:
    async with rt.guard(STAGE, alert.alert_id, alert.item_url):
        for sink in rt.alert_sinks:
            await sink(alert)
        rt.progress.finish(alert.item_url, "alert")
        return "notified"
    return "dead-lettered"


def attach(rt: Runtime) -> None:
    @rt.app.agent(rt.topics.alerts, name="wirewatch.notifier")
    async def notifier(stream: StreamT[Alert]) -> AsyncIterator[str]:
        async for alert in stream:
            yield await handle(rt, alert)
