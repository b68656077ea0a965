"""alerter: one alert, with a stable id, for each article that names a watch."""

from __future__ import annotations

from streams.app import Runtime
from streams.records import ArticleEntities
from streams.routes import deliveries_for
from streams.stages.alert import build_alert

STAGE = "alerter"


async def handle(rt: Runtime, art: ArticleEntities) -> str:
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
    if rt.dedupe.has_alert(alert.alert_id):
        rt.progress.finish(art.item_url, "alert already raised")
        return "alert already raised"
    deliveries = deliveries_for(rt.routing, art, alert)
    # Expected before the alert is out, so `run --once` cannot see the item done and deliveries pending.
    for delivery in deliveries:
        rt.progress.expect(delivery.delivery_id)
        rt.dedupe.queue_delivery(delivery.delivery_id, delivery.destination, delivery.dumps())
    await rt.send(rt.topics.alerts, alert.alert_id, alert)
    for delivery in deliveries:
        await rt.send(rt.topics.deliveries, delivery.destination, delivery)
    rt.dedupe.record_alert(alert.alert_id, alert.url, alert.created_at)
    return "alerted"


def attach(rt: Runtime) -> None:
    rt.stage_agent(rt.topics.articles_entities, STAGE, handle, key=lambda art: art.url)
