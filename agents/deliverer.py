"""deliverer: hands each queued delivery to its destination, with retries, throttles and digests."""

from __future__ import annotations

import time

from streams import metrics
from streams.alerting.deliver import DeliveryFailed, with_retries
from streams.alerting.senders import deliver_once
from streams.pipeline.progress import Finished
from streams.pipeline.runtime import Runtime
from streams.records import Delivery, utcnow

STAGE = "deliverer"
#: Delivery ids of digest flushes start with this; the rest of the id names the digest and its window.
DIGEST = "digest:"


def digest_key(delivery: Delivery) -> str:
    return f"{delivery.destination}|{delivery.route}"


def throttle(rt: Runtime, delivery: Delivery, now: float) -> bool:
    """True when every watch of the delivery was alerted to this destination and route within the
    route's throttle window: the delivery is then held for the digest sent when the window closes."""
    route = rt.routing.route(delivery.route)
    if route is None or route.throttle_minutes is None:
        return False
    watches = sorted({w for alert in delivery.alerts for w in alert.watches})
    keys = [f"{digest_key(delivery)}|{w}" for w in watches]
    windows = [rt.dedupe.throttled_until(k) for k in keys]
    if watches and all(until is not None and until > now for until in windows):
        due = min(u for u in windows if u is not None)
        rt.dedupe.hold(digest_key(delivery), due, delivery.dumps())
        return True
    for key, until in zip(keys, windows, strict=True):
        if until is None or until <= now:
            rt.dedupe.throttle(key, now + route.throttle_minutes * 60)
    return False


#: A delivery's outcome as the result label of wirewatch_deliveries.
_RESULTS = {
    "delivered": "delivered",
    "undeliverable": "undeliverable",
    "held for digest": "held",
    "already delivered": "repeated",
}


async def handle(rt: Runtime, delivery: Delivery) -> str:
    started = time.monotonic()
    outcome = await _deliver(rt, delivery)
    result = _RESULTS.get(outcome)
    if result is not None:
        metrics.DELIVERIES.labels(delivery.destination, result).inc()
    if result in ("delivered", "undeliverable"):
        metrics.DELIVERY_SECONDS.labels(delivery.destination).observe(time.monotonic() - started)
    return outcome


async def _deliver(rt: Runtime, delivery: Delivery) -> str:
    # A record read again after a crash or a rebalance: the destination already has it.
    if rt.dedupe.delivered(delivery.delivery_id):
        return Finished("already delivered")
    digest = delivery.delivery_id.startswith(DIGEST)
    held_ids: list[str] = []
    if digest:
        held = [Delivery.loads(record) for record in rt.dedupe.take_held(digest_key(delivery))]
        if not held:
            return "nothing held"
        held_ids = [d.delivery_id for d in held]
        delivery = delivery.derive(alerts=[alert for d in held for alert in d.alerts])
    elif throttle(rt, delivery, time.time()):
        return Finished("held for digest")
    item_url = delivery.alerts[0].item_url if delivery.alerts else None
    dest = rt.routing.destinations.get(delivery.destination)
    try:
        if dest is None:
            raise KeyError(f"no destination named {delivery.destination!r} in this worker's configuration")
        thread = rt.dedupe.delivery_ref(f"{delivery.reply_to}:{dest.name}") if delivery.reply_to else None
        refs: list[str] = []

        async def attempt() -> None:
            refs[:] = await deliver_once(
                dest, delivery.alerts, rt.http(), rt.pacer(dest.name), thread, digest
            )

        await with_retries(attempt, rt.retry_policy)
    except (DeliveryFailed, KeyError) as exc:
        reason_class = exc.reason_class if isinstance(exc, DeliveryFailed) else "unknown_destination"
        await rt.dead_letter(STAGE, delivery.delivery_id, reason_class, str(exc), item_url)
        # Settled: the dead letter holds it now, so it leaves the outbox.
        for delivery_id in [delivery.delivery_id, *held_ids]:
            rt.dedupe.record_delivered(delivery_id, utcnow())
        return Finished("undeliverable")
    rt.dedupe.record_delivered(delivery.delivery_id, utcnow(), refs[0] if refs else None)
    for delivery_id in held_ids:
        rt.dedupe.record_delivered(delivery_id, utcnow())
    return Finished("delivered")


async def flush_due(rt: Runtime, now: float, queued: set[str]) -> int:
    """Queue a flush for every digest whose window has closed; the deliverer owning it sends it."""
    count = 0
    for key, due in rt.dedupe.held_due():
        flush_id = f"{DIGEST}{key}|{due:.0f}"
        if due > now or flush_id in queued:
            continue
        destination, route = key.split("|", 1)
        flush = Delivery(
            delivery_id=flush_id, destination=destination, route=route, alerts=[], queued_at=utcnow()
        )
        await rt.send(rt.topics.deliveries, destination, flush)
        queued.add(flush_id)
        count += 1
    return count


def start(rt: Runtime) -> None:
    """The digest timer (the deliverer has one copy: a destination's alerts go out in queued order)."""
    queued: set[str] = set()

    # Reads state only: tables change only while a record is handled, so the flush itself is a record.
    @rt.app.timer(interval=5.0, name="wirewatch.digests")  # type: ignore[untyped-decorator]
    async def digests() -> None:
        await flush_due(rt, time.time(), queued)
