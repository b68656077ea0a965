"""The whole pipeline on a real broker, with pages and feeds served on loopback."""

from __future__ import annotations

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas import load_schema
from streams.alerting.alert import alert_id
from streams.kafka.broker import TopicSpec, ensure_topics
from streams.kafka.topics import DEADLETTER, FEED_ITEMS, RECORD_TYPES, partitions_of
from streams.names.watchlist import load_watchlist
from streams.pipeline.runner import AgentDied, run_pipeline
from streams.pipeline.runtime import Runtime
from streams.records import Alert
from streams.settings import Settings
from streams.site import SiteServer, demo_watchlist_path
from tests.integration.kafka_read import read_topic

pytestmark = pytest.mark.integration

EXPECTED = {
    "lna-pushes-toward-sirte": ["lna", "sirte", "khalifa-haftar"],
    "jufra-airbase-jets": ["jufra", "wagner-group"],
    "sarraj-ankara-talks": ["fayez-al-sarraj", "gna"],
}


async def test_feed_to_alerts(any_broker: str, unique_settings: Settings, demo_site: SiteServer) -> None:
    settings = unique_settings.replace(broker=any_broker)
    # A second feed that answers with an HTML error page: a dead letter, and the first feed goes on.
    demo_site.site.raw["/status.xml"] = ("text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>")
    printed: list[Alert] = []

    async def sink(alert: Alert) -> None:
        printed.append(alert)

    result = await run_pipeline(
        settings,
        feeds=[demo_site.feed_url, f"{demo_site.base}/status.xml"],
        watches=load_watchlist(demo_watchlist_path()),
        once=True,
        sinks=[sink],
        once_timeout=120,
    )
    base = demo_site.base
    # Exactly these alerts: names that appear only in sidebars, related lists or comments raise none.
    # The original and its syndicated copy race through parallel partitions: whichever is cleaned
    # first alerts, and the other is dropped as a duplicate of it.
    slugs = [a.url.removeprefix(f"{base}/news/").removesuffix(".html") for a in printed]
    got = {slug.removesuffix("-syndicated"): a.watches for slug, a in zip(slugs, printed, strict=True)}
    assert got == EXPECTED
    for alert in printed:
        assert alert.alert_id == alert_id(alert.url)
        assert "?" not in alert.url, "canonical URL has no tracking parameters"
    outcomes = {k.removeprefix(base): v for k, v in result.outcomes.items()}
    assert outcomes["/news/date-harvest-siwa.html"] == "no watch named"
    pair = [outcomes[f"/news/lna-pushes-toward-sirte{s}.html"] for s in ("", "-syndicated")]
    assert sorted(o.split(":")[0] for o in pair) == ["alert", "duplicate"]
    assert outcomes["/files/tarhuna-report.pdf"] == "deadletter"
    assert outcomes["/news/removed-story.html"] == "deadletter"
    assert outcomes["/live/libya.html"] == "deadletter"
    assert not result.pending

    # Every record on every topic validates against the topic's published schema.
    topics = {name: await read_topic(any_broker, settings.topic_prefix + name) for name in RECORD_TYPES}
    for name, records in topics.items():
        schema = load_schema(name)
        for _, value in records:
            jsonschema.validate(value, schema)
    assert len(topics["wirewatch.feed-items"]) == 8
    assert len(topics["wirewatch.articles.raw"]) == 6
    assert len(topics["wirewatch.articles.clean"]) == 4
    assert len(topics["wirewatch.articles.entities"]) == 4
    assert sorted(k for k, _ in topics["wirewatch.alerts"]) == sorted(a.alert_id for a in printed)
    dead = {v["key"]: (v["stage"], v["error_class"]) for _, v in topics["wirewatch.deadletter"]}
    assert dead == {
        f"{base}/files/tarhuna-report.pdf": ("fetcher", "not_html"),
        f"{base}/news/removed-story.html": ("fetcher", "http_error"),
        f"{base}/live/libya.html": ("cleaner", "extraction_failed"),
        f"{base}/status.xml": ("poller", "bad_feed"),
    }
    # Keys: items by canonical URL, articles from the deduper on by story, alerts by alert id.
    for name in ("wirewatch.articles.clean", "wirewatch.articles.entities"):
        for key, value in topics[name]:
            assert key == value["story_id"] != ""
    assert len({v["story_id"] for _, v in topics["wirewatch.articles.clean"]}) == 4  # four different stories
    entities = topics["wirewatch.articles.entities"]
    for _, value in entities:
        text = str(value["text"])
        for m in value["matches"]:  # type: ignore[attr-defined]
            assert text[m["start"] : m["end"]] == m["text"]
        for e in value["entities"]:  # type: ignore[attr-defined]
            assert text[e["start"] : e["end"]] == e["text"]
    assert any(e["label"] == "PERSON" for _, v in entities for e in v["entities"])  # type: ignore[attr-defined]


async def test_an_agent_that_cannot_even_dead_letter_stops_the_process(
    embedded_broker: str, unique_settings: Settings, demo_site: SiteServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(self: Runtime, *args: object, **kwargs: object) -> None:
        raise ConnectionError("dead-letter topic unreachable")

    # The 404 and the PDF in the demo feed fail in the fetcher, whose guard then cannot record them.
    monkeypatch.setattr(Runtime, "dead_letter", unreachable)
    with pytest.raises(AgentDied, match="dead-letter topic unreachable"):
        await run_pipeline(
            unique_settings.replace(broker=embedded_broker),
            feeds=[demo_site.feed_url],
            watches=load_watchlist(demo_watchlist_path()),
            once=True,
            sinks=[],
            once_timeout=120,
        )


async def test_a_record_that_cannot_be_decoded_is_a_dead_letter_and_the_rest_goes_on(
    embedded_broker: str, unique_settings: Settings, demo_site: SiteServer
) -> None:
    """Faust would throw a decode error into the agent, which then never handled the record: no dead
    letter, and a partition whose commit could never move past it."""
    settings = unique_settings.replace(broker=embedded_broker)
    topic = settings.topic_prefix + FEED_ITEMS
    await ensure_topics(
        embedded_broker, [TopicSpec(topic, partitions_of(FEED_ITEMS, settings.partitions))], 1
    )
    producer = AIOKafkaProducer(bootstrap_servers=embedded_broker.removeprefix("kafka://"))
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"\xff\xfe not json", key=b"https://a.example/1", partition=0)
        await producer.send_and_wait(topic, b'{"url": 3}', key=b"https://a.example/2", partition=0)
    finally:
        await producer.stop()
    printed: list[Alert] = []

    async def sink(alert: Alert) -> None:
        printed.append(alert)

    await run_pipeline(
        settings,
        feeds=[demo_site.feed_url],
        watches=load_watchlist(demo_watchlist_path()),
        once=True,
        sinks=[sink],
        once_timeout=120,
    )
    assert len(printed) == len(EXPECTED)
    dead = [v for _, v in await read_topic(embedded_broker, settings.topic_prefix + DEADLETTER)]
    undecodable = sorted((d["key"], d["stage"]) for d in dead if d["error_class"] == "undecodable")
    assert undecodable == [("https://a.example/1", "fetcher"), ("https://a.example/2", "fetcher")]
    # The group's committed offset, asked as a member of no generation (the run has ended).
    reader = AIOKafkaConsumer(
        bootstrap_servers=embedded_broker.removeprefix("kafka://"), group_id=settings.app_id
    )
    await reader.start()
    try:
        committed = await reader.committed(TopicPartition(topic, 0))
    finally:
        await reader.stop()
    assert committed is not None and committed >= 2, "the commit moved past both records"
