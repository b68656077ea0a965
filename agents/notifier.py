"""notifier: hands each alert on the alerts topic to the configured destinations."""

from __future__ import annotations

from streams.app import Runtime

STAGE = "notifier"


def attach(rt: Runtime) -> None:
    @rt.app.agent(rt.topics.alerts, name="wirewatch.notifier")
    async def notifier(stream: object) -> None:
        async for alert in stream:  # type: ignore[attr-defined]
            async with rt.guard(STAGE, alert.alert_id, alert.item_url):
                for sink in rt.alert_sinks:
                    await sink(alert)
                rt.progress.finish(alert.item_url, "alert")
