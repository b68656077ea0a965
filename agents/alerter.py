"""alerter: one alert, with a stable id, for each article that names a watch."""

from __future__ import annotations

from streams.app import Runtime
from streams.records import Alert, ArticleEntities, Delivery, utcnow
from streams.routes import Routing, route_applies
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


def deliveries_for(routing: Routing, art: ArticleEntities, alert: Alert) -> list[Delivery]:
    """One delivery per destination that a route applying to the article names (each once)."""
    out: dict[str, Delivery] = {}
    for route in routing.routes:
        if not route_applies(route, art.matches, art.text, art.language, art.source):
            continue
        for dest in route.to:
            out.setdefault(
                dest,
                Delivery(
                    delivery_id=f"{alert.alert_id}:{dest}",
                    destination=dest,
                    route=route.name,
                    alerts=[alert],
                    queued_at=utcnow(),
                ),
            )
    return list(out.values())


def attach(rt: Runtime) -> None:
    rt.stage_agent(rt.topics.articles_entities, STAGE, handle, key=lambda art: art.url)
