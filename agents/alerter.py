"""alerter: one alert, with a stable id, per story, and another only when a story names a new watch."""

from __future__ import annotations

from datetime import datetime

from streams import metrics
from streams.alerting.alert import alert_for
from streams.alerting.routes import deliveries_for
from streams.kafka.state import Story
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
    if story is not None and set(alert.watches) <= set(story.watches):
        # Another outlet's copy, or an update, of a story already alerted, naming nothing new.
        return Finished("story already alerted")
    # A later alert of a story is posted, where the destination can, as a reply to the story's first.
    deliveries = deliveries_for(rt.routing, art, alert, reply_to=story.first_alert if story else "")
    await rt.publish_alert(alert, deliveries)
    if art.fetched_at:
        fetched = datetime.fromisoformat(art.fetched_at)
        metrics.ALERT_SECONDS.observe((datetime.now(fetched.tzinfo) - fetched).total_seconds())
    rt.dedupe.record_alert(alert.alert_id, alert.url, alert.created_at)
    if art.story_id:
        first = story.first_alert if story else alert.alert_id
        named = sorted({*(story.watches if story else ()), *alert.watches})
        rt.dedupe.record_story(art.story_id, Story(first, tuple(named)))
    return "alerted"
