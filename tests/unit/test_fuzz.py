"""Fuzzing the feed parser wrapper and the extractor: random, truncated and mutated documents.

Whatever comes in, parse_feed returns a feed or raises BadFeed, and decode_html plus clean_html return an
article or raise FetchError or ExtractionFailed, each example within its deadline. WIREWATCH_FUZZ_SCALE
multiplies the example counts (CI runs the defaults: 4,500 examples in all).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.ingest.clean import Cleaned, ExtractionFailed, clean_html
from streams.ingest.feeds import BadFeed, ParsedFeed, parse_feed
from streams.ingest.fetch import FetchError, Response, decode_html

DATA = Path(__file__).parent.parent / "data"
FEEDS = [
    p.read_bytes()
    for p in sorted((DATA / "feeds").glob("*"))
    if p.suffix in (".rss", ".atom", ".opml", ".json")
]
PAGES = [p.read_bytes() for p in sorted((DATA / "golden").glob("*.html"))]
SCALE = float(os.environ.get("WIREWATCH_FUZZ_SCALE", "1"))
FEED_URL = "https://fuzz.example/feed.xml"
PAGE_URL = "https://fuzz.example/news/1.html"

# Fragments that steer mutations toward what parsers trip on: markup, entities, encodings, odd links.
SPICE = [
    b"<",
    b">",
    b"</",
    b"<!--",
    b"<![CDATA[",
    b"]]>",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"&nbsp;",
    b"&undefined;",
    b"<!DOCTYPE html>",
    b"<?xml version='1.0' encoding='utf-16'?>",
    b'encoding="ebcdic-cp-us"',
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\x00",
    b"\xc3\x28",
    b"http://[::1",
    b"javascript:alert(1)",
    b"<link>http://[bad</link>",
    b"<pubDate>Mon, 99 Foo 20201 25:61:61 +9999</pubDate>",
    b"<author>a@b@c@" + b"a." * 40 + b"</author>",
    b"<script>",
    b"<table><tr><td>",
    b"<meta charset='nonexistent-charset'>",
    b"<link rel=canonical href='http://[::1'>",
    b"<html lang='\xff'>",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A real document, truncated, with bytes replaced, removed, repeated or spiced in."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["cut", "flip", "drop", "insert", "repeat"]))
        at = draw(st.integers(0, len(data)))
        if op == "cut":
            del data[at:]
        elif op == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "drop":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from(SPICE) | st.binary(max_size=32))
        elif op == "repeat":
            data[at:at] = bytes(data[at : at + draw(st.integers(1, 200))]) * draw(st.integers(2, 30))
    return bytes(data)


def _warm_up() -> None:
    """Pay the parsers' one-time set-up (0.4 s for trafilatura's first page) outside any example's time."""
    for page in PAGES:
        _page_survives(page, "text/html")
    for feed in FEEDS:
        _feed_survives(feed)


def fuzz(examples: int) -> settings:
    # Each example takes milliseconds; the deadline catches a pathological case (such as feedparser's
    # quadratic author field, seconds for a few kilobytes) with room for a loaded CI machine.
    return settings(
        max_examples=max(10, int(examples * SCALE)),
        deadline=timedelta(seconds=5),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _feed_survives(data: bytes) -> None:
    try:
        feed = parse_feed(data, FEED_URL)
    except BadFeed:
        return
    assert isinstance(feed, ParsedFeed)
    for item in feed.items:
        assert item.url.startswith(("http://", "https://"))


def _page_survives(data: bytes, content_type: str) -> None:
    try:
        html = decode_html(Response(PAGE_URL, 200, content_type, None, data, None, None))
        cleaned = clean_html(html, PAGE_URL, "fallback")
    except (FetchError, ExtractionFailed):
        return
    assert isinstance(cleaned, Cleaned) and cleaned.text


@pytest.fixture(scope="module", autouse=True)
def _parsers_set_up() -> None:
    _warm_up()


@fuzz(1000)
@given(st.binary(max_size=4096))
def test_feed_parser_survives_random_bytes(data: bytes) -> None:
    _feed_survives(data)


@fuzz(1500)
@given(mutated(FEEDS))
def test_feed_parser_survives_mutated_feeds(data: bytes) -> None:
    _feed_survives(data)


@fuzz(500)
@given(st.binary(max_size=4096), st.sampled_from(["text/html", "", "application/xhtml+xml"]))
def test_extractor_survives_random_bytes(data: bytes, content_type: str) -> None:
    _page_survives(data, content_type)


@fuzz(1500)
@given(mutated(PAGES), st.sampled_from(["text/html", ""]))
def test_extractor_survives_mutated_pages(data: bytes, content_type: str) -> None:
    _page_survives(data, content_type)
