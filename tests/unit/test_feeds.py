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
