"""alerter: one alert, with a stable id, for each article that names a watch."""

from __future__ import annotations

from collections.abc import AsyncIterator

from faust.types import StreamT

from streams.app import Runtime
from streams.records import ArticleEntities
from streams.stages.alert import build_alert

STAGE = "alerter"


async def handle(rt: Runtime, art: ArticleEntities) -> str:
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
            return "no watch named"
        if rt.state.has_alert(alert.alert_id):
            rt.progress.finish(art.item_url, "alert already raised")
            return "alert already raised"
        await rt.send(rt.topics.alerts, alert.alert_id, alert)
        rt.state.record_alert(alert.alert_id, alert.url, alert.created_at)
        return "alerted"
    return "dead-lettered"


def attach(rt: Runtime) -> None:
    @rt.app.agent(rt.topics.articles_entities, name="wirewatch.alerter")
    async def alerter(stream: StreamT[ArticleEntities]) -> AsyncIterator[str]:
        async for art in stream:
            yield await handle(rt, art)
