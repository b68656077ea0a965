"""alerter: one alert, with a stable id, per story, and another only when a story names a new watch."""

from __future__ import annotations

from streams.alerting.alert import alert_for
from streams.alerting.routes import deliveries_for
from streams.pipeline.progress import Finished
from streams.pipeline.runtime import Runtime
from streams.records import ArticleEntities

STAGE = "alerter"


async def handle(rt: Runtime, art: ArticleEntities) -> str:
    alert = alert_for(art, art.matches, rt.settings.snippet_chars)
    if alert is None:
        return Finished("no watch named")
    if rt.dedupe.has_alert(alert.alert_id):
        return Finished("alert already raised")
    story = rt.dedupe.story(art.story_id) if art.story_id else None
    known = story[1] if story else None
    if known is not None and set(alert.watches) <= set(known):
        # Another outlet's copy, or an update, of a story already alerted, naming nothing new.
        return Finished("story already alerted")
    # A later alert of a story is posted, where the destination can, as a reply to the story's first.
    deliveries = deliveries_for(rt.routing, art, alert, reply_to=story[0] if story else "")
    await rt.publish_alert(alert, deliveries)
    rt.dedupe.record_alert(alert.alert_id, alert.url, alert.created_at)
    if art.story_id:
        first = story[0] if story else alert.alert_id
        rt.dedupe.record_story(art.story_id, first, sorted(set(known or ()) | set(alert.watches)))
    return "alerted"
