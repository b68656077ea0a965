"""Feed lists and feed parsing on stored feeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.ingest.feeds import BadFeed, FeedListError, parse_feed, read_feed_list
from streams.ingest.urls import canonical_url, is_web_url

FEEDS = Path(__file__).parent.parent / "data" / "feeds"


def test_rss_items_are_canonical_and_bad_links_rejected() -> None:
    feed = parse_feed((FEEDS / "libya-wire.rss").read_bytes(), "https://libyawire.example/feed.xml")
    assert feed.title == "Libya Wire — latest"
    urls = [i.url for i in feed.items]
    assert urls == [
        "https://libyawire.example/2020/04/abu-grein",
        "https://libyawire.example/2020/04/bashagha-militias",
        "https://libyawire.example/2020/04/bashagha-militias",
        "https://libyawire.example/2020/04/relative-story",
    ]
    first = feed.items[0]
    assert first.published == "2020-04-14T06:12:00+00:00"
    assert first.guid == "lw-88213"
    assert first.summary == "Shelling hit the town of Abu Grein overnight."
    assert feed.items[1].published == "2020-04-13T19:00:00+00:00"
    assert feed.rejected == ["Podcast episode with no web page"]


def test_atom_feed() -> None:
    feed = parse_feed((FEEDS / "sahel-notes.atom").read_bytes(), "https://sahelnotes.example/atom.xml")
    assert feed.title == "Sahel Notes"
    assert [(i.url, i.title) for i in feed.items] == [
        ("https://sahelnotes.example/posts/brak", "Wagner contractors spotted near Brak al-Shati")
    ]


@pytest.mark.parametrize("data", [b"", b"\x00\xff\xfe garbage", (FEEDS / "not-a-feed.html").read_bytes()])
def test_not_a_feed_is_refused(data: bytes) -> None:
    with pytest.raises(BadFeed):
        parse_feed(data, "https://example.test/feed")


def test_feed_list_text_and_opml_agree() -> None:
    expected = ["https://libyawire.example/feed.xml", "https://sahelnotes.example/atom.xml"]
    assert read_feed_list(FEEDS / "feeds.txt") == expected
    assert read_feed_list(FEEDS / "feeds.opml") == expected


def test_feed_list_names_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "feeds.txt"
    bad.write_text("https://ok.example/feed\n\nfile:///etc/passwd\n")
    with pytest.raises(FeedListError, match="line 3"):
        read_feed_list(bad)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://Example.COM:443/a/b?utm_source=x&id=7#frag", "https://example.com/a/b?id=7"),
        ("http://example.com:8080", "http://example.com:8080/"),
        ("http://example.com/?b=2&a=1&fbclid=zz", "http://example.com/?a=1&b=2"),
        # IPv6 literals keep their brackets (they were lost, and the URL no longer parsed).
        ("http://[2001:DB8::10]/feed.xml", "http://[2001:db8::10]/feed.xml"),
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical
    assert is_web_url(canonical) and canonical_url(canonical) == canonical


def test_json_feed() -> None:
    feed = parse_feed(
        (FEEDS / "desert-dispatch.json").read_bytes(), "https://desertdispatch.example/feed.json"
    )
    assert (feed.title, feed.language) == ("Desert Dispatch", "en")
    assert [(i.url, i.title) for i in feed.items] == [
        (
            "https://desertdispatch.example/2020/06/jufra-flights",
            "Cargo flights into al-Jufra continue, monitors say",
        ),
        ("https://partner.example/sirte-front", "Sirte front quiet after two nights of shelling"),
    ]
    assert feed.items[0].published == "2020-06-11T05:40:00+00:00"  # read as UTC
    assert feed.items[0].summary == "Flight trackers logged four Il-76 landings at the base in 48 hours."
    assert feed.items[1].published == "2020-06-10T21:05:00+00:00"
    assert feed.rejected == ["Audio briefing, episode 17"]  # no web page to read
    assert feed.hub == "https://hub.desertdispatch.example/"
    assert feed.self_url == "https://desertdispatch.example/feed.json"


@pytest.mark.parametrize(
    "data",
    [b"{", b'{"version": "1", "items": []}', b'{"version": "https://jsonfeed.org/version/1.1"}', b"[1, 2]"],
)
def test_json_that_is_no_json_feed_is_refused(data: bytes) -> None:
    with pytest.raises(BadFeed):
        parse_feed(data, "https://example.test/feed.json")


def test_feeds_export_as_opml_with_their_health_and_read_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.alerting.health import FeedHealth, failed, succeeded
    from streams.cli import main
    from streams.kafka.state import STATE_FILE, StateStore

    store = StateStore(tmp_path / STATE_FILE)
    store.set_feed_health(
        succeeded(FeedHealth("https://a.example/feed.xml"), 1.6e9, "A <script>Wire</script>", [1.6e9])
    )
    store.set_feed_health(failed(FeedHealth("https://b.example/rss"), 1.6e9, "timeout", "no answer in 30 s"))
    store.close()
    assert main(["feeds", "--opml", "--data-dir", str(tmp_path)]) == 0
    opml = capsys.readouterr().out
    assert 'text="A &lt;script&gt;Wire&lt;/script&gt;"' in opml  # a feed's name is text, never markup
    assert 'wirewatch_last_error_class="timeout"' in opml and 'wirewatch_consecutive_failures="1"' in opml
    (tmp_path / "feeds.opml").write_text(opml)
    assert read_feed_list(tmp_path / "feeds.opml") == ["https://a.example/feed.xml", "https://b.example/rss"]


def test_a_yaml_feed_list_gives_each_feed_its_own_settings(tmp_path: Path) -> None:
    from streams.ingest.feeds import FeedSpec, read_feed_specs

    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n"
        "  - https://a.example/feed.xml\n"
        "  - url: https://b.example/rss\n"
        "    interval: 60\n"
        "    headers: {X-Api-Key: k1}\n"
        "    user_agent: desk-reader/2\n"
        "    source: Bee Wire\n"
        "    language: ar\n"
    )
    assert read_feed_specs(path) == [
        FeedSpec("https://a.example/feed.xml"),
        FeedSpec("https://b.example/rss", 60.0, (("X-Api-Key", "k1"),), "desk-reader/2", "Bee Wire", "ar"),
    ]
    assert read_feed_list(path) == ["https://a.example/feed.xml", "https://b.example/rss"]
    for bad, message in (
        ("feeds: []\n", "expected 'feeds:'"),
        ("feeds:\n  - url: ftp://a.example/x\n", "needs an http"),
        ("feeds:\n  - {url: 'https://a.example/f', interval: -5}\n", "interval"),
        ("feeds:\n  - {url: 'https://a.example/f', cookie: 'x'}\n", "unknown key"),
        ("feeds:\n  - {url: 'https://a.example/f', proxy: 'socks5://x'}\n", "http:// proxy"),
        ("feeds:\n  - {url: 'https://a.example/f', allow_networks: [intranet]}\n", "allow_networks"),
    ):
        path.write_text(bad)
        with pytest.raises(FeedListError, match=message):
            read_feed_specs(path)


def test_opml_categories_and_yaml_tags_become_feed_tags(tmp_path: Path) -> None:
    from streams.ingest.feeds import read_feed_specs

    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>desk</title></head><body>'
        '<outline text="Libya"><outline text="Arabic press">'
        '<outline type="rss" text="Al-Wasat" xmlUrl="https://alwasat.example/rss"/></outline>'
        '<outline type="rss" text="Libya Wire" xmlUrl="https://libyawire.example/feed.xml" category="/Wires,English"/>'
        '</outline><outline type="rss" text="Loose" xmlUrl="https://loose.example/atom"/></body></opml>'
    )
    tags = {spec.url: spec.tags for spec in read_feed_specs(opml)}
    assert tags == {
        "https://alwasat.example/rss": ("libya", "arabic-press"),
        "https://libyawire.example/feed.xml": ("libya", "wires", "english"),
        "https://loose.example/atom": (),
    }
    assert read_feed_list(opml) == list(tags)
    yaml_list = tmp_path / "feeds.yaml"
    yaml_list.write_text("feeds:\n  - url: https://a.example/feed.xml\n    tags: [Libya Arabic, wires]\n")
    assert read_feed_specs(yaml_list)[0].tags == ("libya-arabic", "wires")
