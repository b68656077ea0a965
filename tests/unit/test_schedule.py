"""Each feed's poll interval follows its pace and its publisher's hints, spread so feeds do not bunch."""

from __future__ import annotations

import random

from streams.ingest.feeds import parse_feed
from streams.ingest.fetch import link_targets, max_age
from streams.ingest.schedule import Intervals, Pace, Schedule

FEED = "https://a.example/feed.xml"
STEADY = Intervals(start=300.0, least=30.0, most=3600.0, jitter=0.0)


def test_the_interval_is_half_the_feeds_median_gap_within_bounds() -> None:
    schedule = Schedule([FEED], STEADY)
    assert schedule.interval(FEED) == 300.0  # pace unknown: the start interval
    schedule.succeeded(FEED, Pace(median_gap=120.0))
    assert schedule.interval(FEED) == 60.0  # a feed publishing every 2 minutes: read every minute
    schedule.succeeded(FEED, Pace(median_gap=20.0))
    assert schedule.interval(FEED) == 30.0  # never more often than min_interval
    schedule.succeeded(FEED, Pace(median_gap=86400.0))
    assert schedule.interval(FEED) == 3600.0  # a daily feed still read hourly


def test_publisher_hints_lengthen_it_up_to_the_maximum_and_overrides_win() -> None:
    schedule = Schedule([FEED], STEADY)
    schedule.succeeded(FEED, Pace(median_gap=120.0, hint=900.0))
    assert schedule.interval(FEED) == 900.0  # a max-age or <ttl> of 15 minutes is honoured
    schedule.succeeded(FEED, Pace(median_gap=120.0, hint=86400.0))
    assert schedule.interval(FEED) == 3600.0  # ... up to max_interval: news is not left a day
    fixed = Schedule([FEED], Intervals(overrides={FEED: 10.0}, jitter=0.0))
    fixed.succeeded(FEED, Pace(median_gap=86400.0, hint=3600.0))
    assert fixed.interval(FEED) == 10.0


def test_a_poll_is_rescheduled_from_its_start_once_the_pace_is_learnt() -> None:
    schedule = Schedule([FEED], STEADY)
    assert schedule.take_due(0.0) == [FEED] and schedule.due[FEED] == 300.0
    schedule.succeeded(FEED, Pace(median_gap=120.0))
    assert schedule.due[FEED] == 60.0
    assert schedule.take_due(59.0) == [] and schedule.take_due(60.0) == [FEED]


def test_a_thousand_feeds_are_spread_not_fired_at_once() -> None:
    feeds = [f"https://f{k}.example/feed" for k in range(1000)]
    schedule = Schedule(feeds, Intervals(), spread=60.0, rng=random.Random(7))
    per_second = [len(schedule.take_due(float(t))) for t in range(61)]
    assert sum(per_second) == 1000 and max(per_second) < 40
    # Polled together once, they drift apart: the next round spans a tenth of the interval.
    together = Schedule(feeds, Intervals(start=300.0), rng=random.Random(7))
    together.take_due(0.0)
    dues = sorted(together.due.values())
    assert dues[0] >= 300.0 and dues[-1] - dues[0] > 25.0


def test_feeds_and_servers_say_how_often_to_look() -> None:
    rss = (
        b'<?xml version="1.0"?><rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"'
        b' xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>T</title>%s'
        b'<atom:link rel="hub" href="https://hub.example/"/><atom:link rel="self" href="https://a.example/feed.xml"/>'
        b"<item><title>x</title><link>https://a.example/1</link></item></channel></rss>"
    )
    assert parse_feed(rss % b"<ttl>15</ttl>", FEED).refresh_hint == 900.0
    hourly = b"<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>"
    parsed = parse_feed(rss % hourly, FEED)
    assert parsed.refresh_hint == 900.0
    assert (parsed.hub, parsed.self_url) == ("https://hub.example/", "https://a.example/feed.xml")
    assert parse_feed(rss % b"<ttl>soon</ttl>", FEED).refresh_hint is None
    assert max_age("public, max-age=600") == 600.0 and max_age("no-store, max-age=600") is None
    assert link_targets('<https://hub.example/>; rel="hub", <https://a.example/f>; rel=self') == {
        "hub": "https://hub.example/",
        "self": "https://a.example/f",
    }
