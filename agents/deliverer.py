"""deliverer: hands each queued delivery to its destination, with retries, once per destination."""

from __future__ import annotations

from streams.app import Runtime
from streams.records import Delivery, utcnow
from streams.senders import deliver_once
from streams.stages.deliver import DeliveryFailed, with_retries

STAGE = "deliverer"


async def handle(rt: Runtime, delivery: Delivery) -> str:
    # A record read again after a crash or a rebalance: the destination already has it.
    if rt.dedupe.delivered(delivery.delivery_id):
        rt.progress.finish(delivery.delivery_id, "already delivered")
        return "already delivered"
    item_url = delivery.alerts[0].item_url if delivery.alerts else None
    dest = rt.routing.destinations.get(delivery.destination)
    try:
        if dest is None:
            raise KeyError(f"no destination named {delivery.destination!r} in this worker's configuration")
        thread = rt.dedupe.delivery_ref(f"{delivery.reply_to}:{dest.name}") if delivery.reply_to else None
        refs: list[str] = []

        async def attempt() -> None:
            refs[:] = await deliver_once(dest, delivery.alerts, rt.http(), rt.pacer(dest.name), thread)

        await with_retries(attempt, rt.retry_policy)
    except (DeliveryFailed, KeyError) as exc:
        reason_class = exc.reason_class if isinstance(exc, DeliveryFailed) else "unknown_destination"
        await rt.dead_letter(STAGE, delivery.delivery_id, reason_class, str(exc), item_url)
        # Settled: the dead letter holds it now, so it leaves the outbox.
        rt.dedupe.record_delivered(delivery.delivery_id, utcnow())
        rt.progress.finish(delivery.delivery_id, "undeliverable")
        return "undeliverable"
    rt.dedupe.record_delivered(delivery.delivery_id, utcnow(), refs[0] if refs else None)
    rt.progress.finish(delivery.delivery_id, "delivered")
    return "delivered"


def attach(rt: Runtime) -> None:
    # One copy: a destination's alerts go out in the order they were queued.
    rt.stage_agent(rt.topics.deliveries, STAGE, handle, key=lambda delivery: delivery.delivery_id)
