"""alerter: one alert, with a stable id, for each article that names a watch."""

from __future__ import annotations

from streams.app import Runtime
from streams.stages.alert import build_alert

STAGE = "alerter"


def attach(rt: Runtime) -> None:
    @rt.app.agent(rt.topics.articles_entities, name="wirewatch.alerter")
    async def alerter(stream: object) -> None:
        async for art in stream:  # type: ignore[attr-defined]
            async with rt.guard(STAGE, art.url, art.item_url):
                alert = build_alert(
                    url=art.url,
                    item_url=art.item_url,
                    title=art.title,
                    source=art.source,
                    published=art.published,
                    text=art.text,
                    matches=art.matches,
                    snippet_chars=rt.settings.snippet_chars,
                )
                if alert is None:
                    rt.progress.finish(art.item_url, "no watch named")
                    continue
                if rt.state.has_alert(alert.alert_id):
                    rt.progress.finish(art.item_url, "alert already raised")
                    continue
                await rt.send(rt.topics.alerts, alert.alert_id, alert)
                rt.state.record_alert(alert.alert_id, alert.url, alert.created_at)
