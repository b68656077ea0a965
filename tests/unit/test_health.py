"""Feed health as data: the record after each poll, when it calls for an alert, and how it is shown."""

from __future__ import annotations

import pytest

from streams.alerting.alert import health_alert, render_text
from streams.alerting.health import FeedHealth, change, condition, failed, render_table, succeeded
from streams.alerting.routes import ConfigError, health_deliveries, parse_routing, route_applies
from streams.ingest.schedule import Intervals, Schedule
from streams.records import Alert
from tests.factories import mention

HOUR = 3600.0
FEED = "https://libyawire.example/feed.xml"


def _hourly(start: float, n: int) -> list[float]:
    return [start + i * HOUR for i in range(n)]


def test_success_resets_failures_and_learns_the_rhythm() -> None:
    h = failed(FeedHealth(FEED), 10.0, "timeout", "slow")
    assert h.consecutive_failures == 1 and h.last_error_class == "timeout"
    h = succeeded(h, 100 * HOUR, "Libya Wire", _hourly(0, 6))
    assert h.consecutive_failures == 0 and h.items_seen == 6 and h.source == "Libya Wire"
    assert h.median_interval() == HOUR
    # A date in the future counts as now; a 304 adds no item and keeps the rhythm.
    h = succeeded(h, 101 * HOUR, "", [500 * HOUR])
    assert h.last_item() == 101 * HOUR and h.source == "Libya Wire"


def test_no_rhythm_from_too_few_items() -> None:
    h = succeeded(FeedHealth(FEED), 10 * HOUR, "S", _hourly(0, 3))
    assert h.median_interval() is None
    assert condition(h, 1000 * HOUR, 5, 4.0) == ""


@pytest.mark.parametrize(
    ("hours_quiet", "factor", "state"), [(3.0, 4.0, ""), (5.0, 4.0, "silent"), (50.0, 0.0, "")]
)
def test_silence_is_measured_in_usual_intervals(hours_quiet: float, factor: float, state: str) -> None:
    h = succeeded(FeedHealth(FEED), 5 * HOUR, "S", _hourly(0, 6))
    assert condition(h, 5 * HOUR + hours_quiet * HOUR, 5, factor) == state


def test_one_alert_when_a_feed_starts_failing_and_one_when_it_recovers() -> None:
    h = FeedHealth(FEED, source="Libya Wire")
    raised = []
    for i in range(4):
        h = failed(h, float(i), "http_error", "HTTP 502 Bad Gateway")
        h, alert = change(h, float(i), 3, 4.0)
        raised.append(alert.kind if alert else None)
    assert raised == [None, None, "feed_failing", None]
    assert h.alerted == "failing"
    h = succeeded(h, 10.0, "Libya Wire", [])
    h, alert = change(h, 10.0, 3, 4.0)
    assert alert is not None and alert.kind == "feed_recovered" and h.alerted == ""
    assert "failing" in alert.message


def test_health_alert_record_and_rendering() -> None:
    h = succeeded(FeedHealth(FEED), 5 * HOUR, "Libya Wire", _hourly(0, 6))
    h, found = change(h, 30 * HOUR, 5, 4.0)
    assert found is not None and found.kind == "feed_silent"
    assert "usually publishes every 60 minutes" in found.message
    alert = health_alert(FEED, h.source, found, 30 * HOUR)
    assert alert.kind == "feed_silent" and alert.url == FEED and alert.watches == []
    assert Alert.loads(alert.dumps()) == alert
    assert health_alert(FEED, h.source, found, 30 * HOUR).alert_id == alert.alert_id
    assert "Feed silent: Libya Wire" in render_text(alert)


def test_health_goes_only_to_routes_that_ask_for_it() -> None:
    doc = {
        "destinations": {
            "ops": {"type": "webhook", "url": "https://ops.example/hook", "secret": "${HOOK_SECRET}"},
            "desk": {"type": "webhook", "url": "https://desk.example/hook", "secret": "${HOOK_SECRET}"},
        },
        "routes": [
            {"to": ["desk"]},
            {"name": "ops", "to": ["ops", "desk"], "feed_health": True},
            {"name": "ops-only", "to": ["ops"], "feed_health": "only"},
        ],
    }
    routing = parse_routing(doc, {"HOOK_SECRET": "k"}, set())
    h = failed(FeedHealth(FEED), 1.0, "timeout", "slow")
    h, found = change(h, 1.0, 1, 4.0)
    assert found is not None
    deliveries = health_deliveries(routing, health_alert(FEED, "", found, 1.0))
    assert sorted(d.destination for d in deliveries) == ["desk", "ops"]
    assert {d.route for d in deliveries} == {"ops"}
    # A health-only route takes no article alerts, whatever they name.
    assert not route_applies(
        routing.routes[2], [mention("Sirte is quiet.", "sirte", "Sirte")], "Sirte is quiet.", "en", "S"
    )
    assert route_applies(
        routing.routes[1], [mention("Sirte is quiet.", "sirte", "Sirte")], "Sirte is quiet.", "en", "S"
    )
    with pytest.raises(ConfigError, match="feed_health"):
        parse_routing({**doc, "routes": [{"to": ["ops"], "feed_health": "yes"}]}, {"HOOK_SECRET": "k"}, set())


def test_failing_feeds_back_off_up_to_a_cap_and_honour_retry_after() -> None:
    schedule = Schedule([FEED], Intervals(start=300.0, backoff_max=3000.0, jitter=0.0))
    assert schedule.take_due(0.0) == [FEED]
    delays = []
    for _ in range(5):
        schedule.failed(FEED, 0.0)
        delays.append(schedule.due[FEED])
    assert delays == [600.0, 1200.0, 2400.0, 3000.0, 3000.0]
    schedule.failed(FEED, 0.0, retry_after=7200.0)
    assert schedule.due[FEED] == 7200.0
    schedule.succeeded(FEED)
    assert schedule.take_due(7200.0) == [FEED] and schedule.due[FEED] == 7500.0


def test_table_puts_the_worst_first() -> None:
    ok = succeeded(FeedHealth("https://a.example/feed"), 5 * HOUR, "A", _hourly(0, 6))
    bad = failed(FeedHealth("https://b.example/feed"), 5 * HOUR, "blocked_address", "10.0.0.1 is private")
    bad, _ = change(bad, 5 * HOUR, 1, 4.0)
    table = render_table([ok.as_json(), bad.as_json()], 5 * HOUR + 60).splitlines()
    assert table[0].split()[:2] == ["STATUS", "FEED"]
    assert table[1].startswith("failing") and "blocked_address: 10.0.0.1 is private" in table[1]
    assert table[2].startswith("ok") and "60 minutes" in table[2] and "60s ago" in table[2]


def test_health_alerts_render_for_slack_and_email() -> None:
    from streams.alerting.render import email_message, slack_message

    h = failed(FeedHealth(FEED, source="Libya Wire"), 1.0, "timeout", "slow")
    h, found = change(h, 1.0, 1, 4.0)
    assert found is not None
    alert = health_alert(FEED, h.source, found, 1.0)
    message = slack_message(alert)
    assert all(block.get("text", {}).get("text", "x") for block in message["blocks"])
    assert message["text"] == "Feed failing: Libya Wire"
    assert (
        email_message(alert, "w@example.org", ["ops@example.org"])["Subject"]
        == "[wirewatch] Feed failing: Libya Wire"
    )
