"""The WebSub subscriber's checks: signatures, intent verification, leases and leaving removed feeds."""

from __future__ import annotations

import hashlib
import hmac
import time

from streams.ingest.fetch import Limits
from streams.ingest.websub import LEASE, Subscription, WebSub, callback_id, secret_for, signature_ok

FEED = "https://a.example/feed.xml"
LIMITS = Limits(1.0, 1.0, 1.0, 1000)


class Store:
    def __init__(self) -> None:
        self.subs: dict[str, Subscription] = {}

    def subscriptions(self) -> list[Subscription]:
        return list(self.subs.values())

    def set_subscription(self, sub: Subscription) -> None:
        self.subs[sub.feed_url] = sub

    def drop_subscription(self, feed_url: str) -> None:
        self.subs.pop(feed_url, None)


class Client:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []

    async def post_form(self, url: str, form: dict[str, str], limits: Limits) -> int:
        self.sent.append((url, form))
        return 202


def _websub(feeds: list[str]) -> tuple[WebSub, Store, Client]:
    store, client = Store(), Client()
    return WebSub("https://ww.example/websub/", "master", feeds, store, client), store, client  # type: ignore[arg-type]


def test_a_push_counts_only_with_the_feeds_own_signature() -> None:
    body = b"<rss/>"
    secret = secret_for("master", FEED)
    good = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert signature_ok(secret, f"sha256={good}", body)
    assert signature_ok(secret, "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(), body)
    assert not signature_ok(secret, f"sha256={good}", body + b" ")
    assert not signature_ok(secret_for("master", "https://b.example/feed"), f"sha256={good}", body)
    assert not signature_ok(secret, f"md5={good}", body) and not signature_ok(secret, None, body)
    websub, _, _ = _websub([FEED])
    assert websub.delivery(callback_id(FEED), f"sha256={good}", body) == ("accepted", FEED)
    assert websub.delivery(callback_id(FEED), "sha256=00", body) == ("forged", None)
    assert websub.delivery("nope", f"sha256={good}", body) == ("unknown", None)


async def test_subscribing_and_the_hubs_intent_check() -> None:
    websub, store, client = _websub([FEED])
    await websub.ensure(FEED, "https://hub.example/", FEED, LIMITS)
    ((hub, form),) = client.sent
    assert hub == "https://hub.example/" and form["hub.mode"] == "subscribe"
    assert form["hub.callback"] == f"https://ww.example/websub/{callback_id(FEED)}"
    assert form["hub.secret"] == secret_for("master", FEED)
    params = {"hub.mode": "subscribe", "hub.topic": FEED, "hub.challenge": "c1", "hub.lease_seconds": "600"}
    assert websub.verify_intent(callback_id(FEED), params) == (200, "c1")
    assert 590 < store.subs[FEED].expires - time.time() <= 600  # the lease the hub granted
    assert websub.verify_intent("someone-elses", params)[0] == 404
    assert websub.verify_intent(callback_id(FEED), {**params, "hub.challenge": ""})[0] == 404


async def test_leases_are_renewed_near_their_end_and_removed_feeds_left() -> None:
    websub, store, client = _websub([FEED])
    now = time.time()
    store.set_subscription(Subscription(FEED, "https://hub.example/", FEED, now + LEASE / 2))
    await websub.ensure(FEED, "https://hub.example/", FEED, LIMITS, now=now)
    assert client.sent == []  # half the lease left: nothing to do
    await websub.ensure(FEED, "https://hub.example/", FEED, LIMITS, now=now + LEASE / 2 - 60)
    assert [f["hub.mode"] for _, f in client.sent] == ["subscribe"]
    # The feed leaves the list: the next worker to start unsubscribes and forgets it.
    gone, store2, client2 = _websub(["https://other.example/feed"])
    store2.set_subscription(Subscription(FEED, "https://hub.example/", FEED, now + LEASE))
    await gone.drop_removed(LIMITS)
    assert [f["hub.mode"] for _, f in client2.sent] == ["unsubscribe"] and store2.subs == {}
