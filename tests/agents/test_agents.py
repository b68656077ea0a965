"""Agents through Faust's test context: records in, records out, failures to the dead-letter topic."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from streams.kafka.faust_patches import handling
from streams.kafka.state import TableState
from streams.names.watchlist import Watch
from streams.pipeline.runtime import Runtime, build_runtime
from streams.records import ArticleEntities, CleanArticle, FeedItem, WatchMatch, WireRecord, utcnow
from streams.settings import Settings
from tests.factories import loopback_http, mention

WATCHES = [Watch("khalifa-haftar", "actor", "Khalifa Haftar"), Watch("sirte", "location", "Sirte")]
TEXT = "Forces loyal to Khalifa Haftar regrouped east of Sirte on Monday, officials said. " * 3


class Sent:
    """Stands in for Runtime.send_many (which Runtime.send calls): remembers what each agent published."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, WireRecord]] = []

    async def __call__(self, topic: Any, records: Sequence[tuple[str, WireRecord]]) -> None:
        self.records.extend((topic.get_topic_name(), key, value) for key, value in records)

    def on(self, suffix: str) -> list[WireRecord]:
        return [v for t, _, v in self.records if t.endswith(suffix)]


@pytest.fixture(params=["local", "kafka"])
def rt(unique_settings: Settings, request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """A runtime whose dedupe state is SQLite, then Faust tables."""
    settings = unique_settings.replace(state=request.param)
    runtime = build_runtime(settings, "kafka://127.0.0.1:9", feeds=[], watches=WATCHES)
    runtime.send_many = Sent()  # type: ignore[method-assign]
    yield runtime
    runtime.state.close()


def _agent(rt: Runtime, name: str) -> Any:
    return rt.app.agents[f"wirewatch.{name}"]


def _entities(url: str, matches: list[WatchMatch], story: str = "") -> ArticleEntities:
    return ArticleEntities(
        url=url,
        item_url=url,
        feed_url="f",
        source="S",
        title="T",
        published=None,
        language="en",
        text=TEXT,
        model="m",
        entities=[],
        matches=matches,
        extracted_at=utcnow(),
        story_id=story,
    )


async def test_alerter_alerts_once_per_article(rt: Runtime) -> None:
    match = mention(TEXT, "khalifa-haftar", "Khalifa Haftar")
    async with _agent(rt, "alerter").test_context() as agent:
        await agent.put(_entities("https://a.example/1", [match]), key="https://a.example/1")
        await agent.put(_entities("https://a.example/1", [match]), key="https://a.example/1")
        await agent.put(_entities("https://a.example/2", []), key="https://a.example/2")
    sent: Sent = rt.send_many  # type: ignore[assignment]
    alerts = sent.on("wirewatch.alerts")
    assert len(alerts) == 1
    assert alerts[0].watches == ["khalifa-haftar"]  # type: ignore[attr-defined]
    assert rt.progress.outcomes == {
        "https://a.example/1": "alert already raised",
        "https://a.example/2": "no watch named",
    }


def _item(url: str) -> FeedItem:
    return FeedItem(
        url=url, feed_url="f", source="S", title="T", published=None, summary="", guid="g", seen_at=utcnow()
    )


def _clean(
    url: str, text_hash: str = "h", item_url: str | None = None, text: str = TEXT, language: str = "en"
) -> CleanArticle:
    return CleanArticle(
        url=url,
        item_url=item_url or url,
        feed_url="f",
        source="S",
        title="T",
        published=None,
        language=language,
        text=text,
        text_hash=text_hash,
        cleaned_at=utcnow(),
    )


async def test_deduper_passes_each_article_once(rt: Runtime) -> None:
    assert isinstance(rt.dedupe, TableState) == (rt.settings.state == "kafka")
    async with _agent(rt, "deduper").test_context() as agent:
        for article in [
            _clean("https://a.example/1", "h1"),
            _clean("https://a.example/1", "h1-updated", item_url="https://a.example/1?ref=rss"),
            _clean("https://b.example/copy", "h1"),
            _clean("https://a.example/2", "h2"),
        ]:
            await agent.put(article, key=article.text_hash)
    sent: Sent = rt.send_many  # type: ignore[assignment]
    assert [a.url for a in sent.on("wirewatch.articles.clean")] == [  # type: ignore[attr-defined]
        "https://a.example/1",
        "https://a.example/2",
    ]
    assert rt.progress.outcomes == {
        "https://a.example/1?ref=rss": "duplicate: same canonical URL",
        "https://b.example/copy": "duplicate: same text as https://a.example/1",
    }


async def test_fetcher_skips_items_already_fetched(rt: Runtime, demo_site: Any) -> None:
    item = _item(demo_site.base + "/news/lna-pushes-toward-sirte.html")
    async with _agent(rt, "fetcher").test_context() as agent:
        await agent.put(item, key=item.url)
        await agent.put(item, key=item.url)  # as a new leader's poller would publish it again
    await rt.close()
    sent: Sent = rt.send_many  # type: ignore[assignment]
    assert len(sent.on("wirewatch.articles.raw")) == 1
    assert rt.progress.outcomes == {item.url: "already fetched"}


async def test_deduper_groups_near_duplicates_into_one_story(rt: Runtime) -> None:
    from tests.unit.test_stories import COPIES, ORIGINAL

    original = "\n\n".join(ORIGINAL)
    articles = [
        _clean("https://a.example/1", "h1", text=original),
        _clean("https://b.example/copy", "h2", text="\n\n".join(COPIES[0])),
        _clean("https://c.example/other", "h3", text=TEXT),
    ]
    async with _agent(rt, "deduper").test_context() as agent:
        for article in articles:
            await agent.put(article, key=article.text_hash)
    sent: Sent = rt.send_many  # type: ignore[assignment]
    out = [(key, value) for topic, key, value in sent.records if topic.endswith("articles.clean")]
    stories = [value.story_id for _, value in out]  # type: ignore[attr-defined]
    assert stories[0] == stories[1] != stories[2]
    assert [key for key, _ in out] == stories  # keyed by story from here on


class _Event:
    """What a Faust table asks of the record being handled: the topic and partition it came from."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = type("Message", (), {"topic": topic, "partition": partition})()


async def test_deduper_sees_a_batchs_own_articles_and_records_them_only_once_published(rt: Runtime) -> None:
    """Articles that arrive together are one batch: a copy and a near-duplicate of an article earlier in
    it are found although the state has nothing yet, and the state is written after the publication."""
    from agents.deduper import handle
    from tests.unit.test_stories import COPIES, ORIGINAL

    batch = [
        _clean("https://a.example/1", "h1", text="\n\n".join(ORIGINAL)),
        _clean("https://b.example/copy", "h1", text="\n\n".join(ORIGINAL)),
        _clean("https://c.example/rewrite", "h2", text="\n\n".join(COPIES[0])),
        _clean("https://a.example/1", "h3", item_url="https://a.example/1?ref=rss"),
    ]
    recorded_before_send: list[bool] = []
    sent: Sent = rt.send_many  # type: ignore[assignment]

    async def publish(topic: Any, records: Sequence[tuple[str, WireRecord]]) -> None:
        recorded_before_send.append(rt.dedupe.duplicate_of("https://a.example/1", "h1") is not None)
        await sent(topic, records)

    rt.send_many = publish  # type: ignore[method-assign]
    # As the stage's batch runner does: a table writes to the partition of the record being handled.
    with handling(_Event(rt.topics.articles_dedupe.get_topic_name(), 0)):
        outcomes = await handle(rt, batch)
    assert outcomes == [
        "unique",
        "duplicate: same text as https://a.example/1",
        "unique",
        "duplicate: same canonical URL",
    ]
    out = [value for topic, _, value in sent.records if topic.endswith("articles.clean")]
    assert [a.url for a in out] == ["https://a.example/1", "https://c.example/rewrite"]  # type: ignore[attr-defined]
    assert out[0].story_id == out[1].story_id  # type: ignore[attr-defined]
    assert recorded_before_send == [False]
    assert rt.dedupe.duplicate_of("https://a.example/1", "h1") is not None


async def test_alerter_raises_one_alert_per_story_unless_it_names_a_new_watch(rt: Runtime) -> None:
    haftar = mention(TEXT, "khalifa-haftar", "Khalifa Haftar")
    sirte = mention(TEXT, "sirte", "Sirte", kind="location")
    async with _agent(rt, "alerter").test_context() as agent:
        for url, matches in [
            ("https://a.example/1", [haftar]),
            ("https://b.example/copy", [haftar]),  # another outlet, nothing new
            ("https://c.example/update", [haftar, sirte]),  # the story now names Sirte too
        ]:
            await agent.put(_entities(url, matches, story="s1"), key="s1")
    sent: Sent = rt.send_many  # type: ignore[assignment]
    alerts = sent.on("wirewatch.alerts")
    assert [a.url for a in alerts] == ["https://a.example/1", "https://c.example/update"]  # type: ignore[attr-defined]
    assert all(a.story_id == "s1" for a in alerts)  # type: ignore[attr-defined]
    assert rt.progress.outcomes == {"https://b.example/copy": "story already alerted"}


async def test_extractor_finds_entities_and_matches(rt: Runtime) -> None:
    article = _clean("https://a.example/3")
    try:
        async with _agent(rt, "extractor").test_context() as agent:
            await agent.put(article, key=article.url)
    finally:
        await rt.close()
    sent: Sent = rt.send_many  # type: ignore[assignment]
    assert not sent.on("wirewatch.deadletter"), sent.on("wirewatch.deadletter")
    (out,) = sent.on("wirewatch.articles.entities")
    assert {m.watch for m in out.matches} == {"khalifa-haftar", "sirte"}  # type: ignore[attr-defined]
    labels = {(e.text, e.label) for e in out.entities}  # type: ignore[attr-defined]
    assert ("Khalifa Haftar", "PERSON") in labels
    for e in out.entities:  # type: ignore[attr-defined]
        assert TEXT[e.start : e.end] == e.text


FRENCH = "Le maréchal Khalifa Haftar a rencontré ses alliés à Syrte, selon des sources militaires. " * 2
ARABIC = "قالت قوات خليفة حفتر إنها عززت مواقعها قرب مدينة سرت، بحسب مصدر عسكري. " * 2


async def test_extractor_reads_each_language_with_its_own_model_or_none(rt: Runtime) -> None:
    french = _clean("https://a.example/fr", text=FRENCH, language="fr")
    arabic = _clean("https://a.example/ar", text=ARABIC, language="ar")
    try:
        async with _agent(rt, "extractor").test_context() as agent:
            await agent.put(french, key=french.url)
            await agent.put(arabic, key=arabic.url)
    finally:
        await rt.close()
    sent: Sent = rt.send_many  # type: ignore[assignment]
    fr, ar = sent.on("wirewatch.articles.entities")
    assert (fr.model, fr.language) == ("fr_core_news_sm", "fr")  # type: ignore[attr-defined]
    # The French pipeline's PER is published as PERSON, as the matcher and consumers expect.
    assert ("Khalifa Haftar", "PERSON") in {(e.text, e.label) for e in fr.entities}  # type: ignore[attr-defined]
    assert {m.watch for m in fr.matches} == {"khalifa-haftar", "sirte"}  # type: ignore[attr-defined]
    # No Arabic pipeline: no entities, and the matcher alone still finds the names.
    assert (ar.model, ar.entities) == ("", [])  # type: ignore[attr-defined]
    assert {m.watch for m in ar.matches} == {"khalifa-haftar", "sirte"}  # type: ignore[attr-defined]


async def test_fetcher_failure_goes_to_dead_letter_and_agent_lives(rt: Runtime, tmp_path: Path) -> None:
    bad = _item("http://127.0.0.1:9/nothing")
    async with _agent(rt, "fetcher").test_context() as agent:
        await agent.put(bad, key=bad.url)
        await agent.put(bad, key=bad.url)  # the agent is still there to take a second record
    await rt.close()
    sent: Sent = rt.send_many  # type: ignore[assignment]
    dead = sent.on("wirewatch.deadletter")
    assert len(dead) == 2
    assert dead[0].stage == "fetcher" and dead[0].error_class == "fetch_failed"  # type: ignore[attr-defined]
    assert dead[0].key == bad.url  # type: ignore[attr-defined]


async def test_poller_uses_conditional_get_and_publishes_each_item_once(rt: Runtime, demo_site: Any) -> None:
    from agents.poller import poll_feed

    try:
        first = await poll_feed(rt, demo_site.feed_url)
        again = await poll_feed(rt, demo_site.feed_url)
    finally:
        await rt.close()
    sent: Sent = rt.send_many  # type: ignore[assignment]
    items = sent.on("wirewatch.feed-items")
    assert first == len(items) == 8
    assert again == 0
    assert demo_site.not_modified == 1  # the second poll was answered 304 Not Modified
    assert len({i.url for i in items}) == 8  # type: ignore[attr-defined]
    assert all("utm_" not in i.url for i in items)  # type: ignore[attr-defined]


async def test_throttle_holds_repeats_and_sends_them_as_a_digest(rt: Runtime) -> None:
    import time

    from aiohttp import web

    from agents.deliverer import flush_due
    from streams.alerting.alert import build_alert
    from streams.alerting.routes import Destination, Route, Routing, Secret
    from streams.records import Delivery

    received: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.json())["url"])
        return web.Response(status=204)

    async with loopback_http({"/hook": hook}) as base:
        url = base + "/hook"
        rt.routing = Routing(
            {"partner": Destination("partner", "webhook", {"url": url, "secret": Secret("k", "K")})},
            (Route("watch-desk", ("partner",), throttle_minutes=30),),
        )

        def delivery(article: str, watch: str, name: str) -> Delivery:
            alert = build_alert(
                url=article, item_url=article, title="T", source="S", published=None, text=TEXT,
                matches=[mention(TEXT, watch, name)], snippet_chars=40,
            )  # fmt: skip
            assert alert is not None
            return Delivery(
                delivery_id=f"{alert.alert_id}:partner", destination="partner", route="watch-desk",
                alerts=[alert], queued_at=utcnow(),
            )  # fmt: skip

        try:
            async with _agent(rt, "deliverer").test_context() as agent:
                await agent.put(
                    delivery("https://a.example/1", "khalifa-haftar", "Khalifa Haftar"), key="partner"
                )
                await agent.put(
                    delivery("https://a.example/2", "khalifa-haftar", "Khalifa Haftar"), key="partner"
                )
                await agent.put(delivery("https://a.example/3", "sirte", "Sirte"), key="partner")
                assert received == ["https://a.example/1", "https://a.example/3"]  # the repeat is held
                # Half an hour later the window closes: the flush is queued, then handled like any delivery.
                assert await flush_due(rt, time.time() + 31 * 60, set()) == 1
                sent: Sent = rt.send_many  # type: ignore[assignment]
                (flush,) = sent.on("wirewatch.deliveries")
                await agent.put(flush, key="partner")
                await agent.put(flush, key="partner")  # read again after a crash: not sent twice
        finally:
            await rt.close()
        assert received == ["https://a.example/1", "https://a.example/3", "https://a.example/2"]
        assert sorted(rt.progress.outcomes.values()) == [
            "delivered",
            "delivered",
            "delivered",
            "held for digest",
        ]


async def test_a_feeds_own_settings_shape_its_poll_and_its_items(rt: Runtime, demo_site: Any) -> None:
    """From a YAML feed list: its headers and user agent on the request, its source name and language
    on the items it publishes."""
    from aiohttp import web

    from agents.poller import poll_feed
    from streams.ingest.feeds import FeedSpec
    from streams.site import serve_loopback

    seen: list[dict[str, str]] = []

    async def feed(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        raise web.HTTPFound(demo_site.feed_url)  # the demo site's feed, after a hop

    app = web.Application()
    app.router.add_get("/feed.xml", feed)
    runner, base = await serve_loopback(app)
    url = f"{base}/feed.xml"
    rt.feed_specs[url] = FeedSpec(
        url,
        headers=(("X-Api-Key", "k1"),),
        user_agent="desk-reader/2",
        source="Desert Wire (EN)",
        language="en",
        tags=("libya-english",),
    )
    try:
        assert await poll_feed(rt, url) == 8
    finally:
        await runner.cleanup()
        await rt.close()
    assert seen[0]["X-Api-Key"] == "k1" and seen[0]["User-Agent"] == "desk-reader/2"
    items = rt.send_many.on("wirewatch.feed-items")  # type: ignore[attr-defined]
    assert {(i.source, i.declared_language, tuple(i.tags)) for i in items} == {
        ("Desert Wire (EN)", "en", ("libya-english",))
    }


async def test_a_feed_reaches_networks_of_its_own_and_goes_through_its_proxy(
    rt: Runtime, demo_site: Any
) -> None:
    """Loopback is refused to every feed here but one, which a YAML feed list allows it; another feed, on
    a name no resolver knows, goes through its own HTTP proxy, which relays to the demo site."""
    import asyncio
    from urllib.parse import urlsplit

    from agents.poller import poll_feed
    from streams.ingest.feeds import FeedSpec

    rt.settings = rt.settings.replace(allow_networks=())
    site = urlsplit(demo_site.feed_url)
    asked: list[bytes] = []

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        asked.append(head.split(b"\r\n", 1)[0])
        method, target, rest = head.split(b" ", 2)
        path = urlsplit(target.decode()).path.encode()
        up_reader, up_writer = await asyncio.open_connection(site.hostname, site.port)
        up_writer.write(
            b" ".join([method, path, rest]).replace(b"Connection: keep-alive", b"Connection: close")
        )
        await up_writer.drain()
        writer.write(await up_reader.read())
        await writer.drain()
        up_writer.close()
        writer.close()

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    proxy_url = f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}"
    proxied = "http://feeds.desk.invalid/feed.xml"
    try:
        assert await poll_feed(rt, demo_site.feed_url) == 0  # refused: loopback is not allowed
        rt.feed_specs[demo_site.feed_url] = FeedSpec(demo_site.feed_url, allow_networks=("127.0.0.0/8",))
        assert await poll_feed(rt, demo_site.feed_url) == 8
        rt.feed_specs[proxied] = FeedSpec(proxied, proxy=proxy_url, allow_networks=("127.0.0.0/8",))
        await poll_feed(rt, proxied)
    finally:
        proxy.close()
        await rt.close()
    dead = rt.send_many.on("wirewatch.deadletter")  # type: ignore[attr-defined]
    assert dead[0].error_class == "blocked_address"
    assert asked == [b"GET http://feeds.desk.invalid/feed.xml HTTP/1.1"]
