"""WebSub (W3C) subscriber: subscribe to a feed's hub, answer its intent checks, verify what it pushes."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from streams.ingest.fetch import FetchError, Limits, SafeClient

log = logging.getLogger("wirewatch")

#: How long a subscription is asked for, and how long before its end it is renewed (a tenth of it).
LEASE = 10 * 86400
_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}

Delivery = Literal["accepted", "forged", "unknown"]


@dataclass(frozen=True)
class Subscription:
    """A feed's subscription at its hub: the topic URL it goes by there, until when it holds."""

    feed_url: str
    hub: str
    topic: str
    expires: float


class SubscriptionStore(Protocol):
    """Where subscriptions outlive the process (the data directory)."""

    def subscriptions(self) -> list[Subscription]: ...
    def set_subscription(self, sub: Subscription) -> None: ...
    def drop_subscription(self, feed_url: str) -> None: ...


def callback_id(feed_url: str) -> str:
    """The callback path's last part for a feed: every worker computes it from the feed list alone."""
    return hashlib.sha256(feed_url.encode()).hexdigest()[:24]


def secret_for(master: str, feed_url: str) -> str:
    """The hub.secret of one feed's subscription, derived from the group's secret: any worker can check
    what the hub pushes, and no feed's secret tells another's."""
    return hmac.new(master.encode(), feed_url.encode(), hashlib.sha256).hexdigest()


def signature_ok(secret: str, header: str | None, body: bytes) -> bool:
    """Whether X-Hub-Signature ("sha256=<hex>"; sha1, sha384 and sha512 too) is the body's HMAC."""
    method, _, given = (header or "").partition("=")
    digest = _HASHES.get(method.strip().lower())
    if digest is None or not given:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


def master_secret(configured: str, data_dir: Path) -> str:
    """The group's WebSub secret: the setting's, else one made once and kept in the data directory (one
    worker; several must share websub_secret)."""
    if configured:
        return configured
    path = data_dir / "websub-secret"
    if path.is_file():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    made = secrets.token_hex(32)
    path.write_text(made)
    path.chmod(0o600)
    return made


class WebSub:
    """One worker's side of WebSub: (re)subscribing from the poller, answering the hub on the callback."""

    def __init__(
        self, callback_base: str, master: str, feeds: list[str], store: SubscriptionStore, client: SafeClient
    ) -> None:
        self.base = callback_base.rstrip("/")
        self.master = master
        self.by_id = {callback_id(f): f for f in feeds}
        self.store = store
        self.client = client
        self.wanted: dict[str, str] = {}  # feed URL -> topic, asked for by this worker and not yet confirmed

    def callback(self, feed_url: str) -> str:
        return f"{self.base}/{callback_id(feed_url)}"

    def subscribed(self, feed_url: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return any(s.feed_url == feed_url and s.expires > now for s in self.store.subscriptions())

    async def ensure(
        self, feed_url: str, hub: str, topic: str, limits: Limits, now: float | None = None
    ) -> None:
        """Subscribe to the feed at its hub, or renew a lease with less than a tenth of it left."""
        now = time.time() if now is None else now
        held = next((s for s in self.store.subscriptions() if s.feed_url == feed_url), None)
        if held is not None and held.hub == hub and held.expires - now > LEASE / 10:
            return
        await self._ask(hub, topic, feed_url, "subscribe", limits)

    async def drop_removed(self, limits: Limits) -> None:
        """Unsubscribe the feeds no longer in the feed list."""
        for sub in self.store.subscriptions():
            if callback_id(sub.feed_url) not in self.by_id:
                await self._ask(sub.hub, sub.topic, sub.feed_url, "unsubscribe", limits)
                self.store.drop_subscription(sub.feed_url)

    async def _ask(self, hub: str, topic: str, feed_url: str, mode: str, limits: Limits) -> None:
        form = {
            "hub.mode": mode,
            "hub.topic": topic,
            "hub.callback": self.callback(feed_url),
            "hub.lease_seconds": str(LEASE),
        }
        if mode == "subscribe":
            form["hub.secret"] = secret_for(self.master, feed_url)
            self.wanted[feed_url] = topic
        try:
            status = await self.client.post_form(hub, form, limits)
        except FetchError as exc:
            log.warning("websub: %s of %s at %s failed: %s", mode, topic, hub, exc)
            return
        if status != 202 and not 200 <= status < 300:
            log.warning("websub: the hub %s answered %d to the %s of %s", hub, status, mode, topic)
            return
        if mode == "subscribe":
            # Until the hub confirms, the requested lease stands; its confirmation replaces it.
            self.store.set_subscription(Subscription(feed_url, hub, topic, time.time() + LEASE))

    def verify_intent(self, cid: str, params: dict[str, str]) -> tuple[int, str]:
        """The hub's GET on the callback: echo its challenge for a subscription we want (any worker knows the
        feed list), record the lease it grants; 404 for anything else."""
        feed_url = self.by_id.get(cid)
        mode, topic, challenge = (
            params.get("hub.mode"),
            params.get("hub.topic", ""),
            params.get("hub.challenge"),
        )
        if mode == "denied":
            log.warning("websub: the hub denied the subscription to %s: %s", topic, params.get("hub.reason"))
            return 200, ""
        if feed_url is None or not challenge or mode not in ("subscribe", "unsubscribe"):
            return 404, "unknown subscription"
        if mode == "unsubscribe":
            return 200, challenge  # any feed of ours may be left; the store forgets it when asked
        try:
            lease = float(params.get("hub.lease_seconds") or LEASE)
        except ValueError:
            lease = float(LEASE)
        held = next((s for s in self.store.subscriptions() if s.feed_url == feed_url), None)
        hub = held.hub if held else ""
        if held is not None or feed_url in self.wanted:
            self.store.set_subscription(Subscription(feed_url, hub, topic, time.time() + lease))
            self.wanted.pop(feed_url, None)
        return 200, challenge

    def delivery(self, cid: str, signature: str | None, body: bytes) -> tuple[Delivery, str | None]:
        """A push from the hub: accepted (with the feed it is for) only with a valid signature."""
        feed_url = self.by_id.get(cid)
        if feed_url is None:
            return "unknown", None
        if not signature_ok(secret_for(self.master, feed_url), signature, body):
            return "forged", None
        return "accepted", feed_url


def topic_url(feed_url: str, self_url: str | None) -> str:
    """The topic a hub knows the feed by: its rel="self" URL when it gives one."""
    return self_url or feed_url
