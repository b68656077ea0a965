"""The worker's Prometheus metrics, served on the console's /metrics (and on metrics_address when set)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from streams.reasons import REASON_CLASSES

# Labels take a handful of values per deployment, never one per feed, article or URL: stage (8), outcome
# (about 15, see outcome_label), reason class (20 and "exception"), topic (9), partition (the configured
# count), destination (the config's), result (4 or 5 fixed words).
STALLS = Counter(
    "wirewatch_partition_stalls",
    "Reports of an assigned partition whose records waited while nothing was handled",
    ["topic"],
)
REREADS = Counter(
    "wirewatch_partition_rereads",
    "Times a partition was read again from its committed offset: a hole of unhandled records, or a stall",
    ["topic", "reason"],
)
UNHANDLED_ACKS = Counter(
    "wirewatch_unhandled_acks",
    "Records Faust acknowledged though no agent handled them (not committed; read again)",
    ["topic"],
)
RECORDS = Counter(
    "wirewatch_records",
    "Records a stage handled, by how each ended (alerted, no watch named, duplicate, dead-lettered...)",
    ["stage", "outcome"],
)
DEAD_LETTERS = Counter(
    "wirewatch_dead_letters",
    "Records written to wirewatch.deadletter, by stage and reason class",
    ["stage", "reason"],
)
FEED_POLLS = Counter(
    "wirewatch_feed_polls",
    "Feed polls by result: new_items, no_new_items, not_modified (a 304), failed",
    ["result"],
)
DELIVERIES = Counter(
    "wirewatch_deliveries",
    "Deliveries by destination and result: delivered, undeliverable, held (for a digest), repeated",
    ["destination", "result"],
)
DELIVERY_SECONDS = Histogram(
    "wirewatch_delivery_seconds",
    "Time to hand a delivery to its destination, retries included",
    ["destination"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600),
)
ALERT_SECONDS = Histogram(
    "wirewatch_alert_seconds",
    "Time from an article's page fetched to its alert published",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
)
CPU_FAILURES = Counter(
    "wirewatch_cpu_failures",
    "Work in the CPU processes that ran past its deadline (timeout) or took its process down (crash)",
    ["kind"],
)
CPU_RESTARTS = Counter("wirewatch_cpu_restarts", "CPU processes replaced after a timeout or a crash")
WEBSUB = Counter(
    "wirewatch_websub_deliveries",
    "Feeds pushed by WebSub hubs: accepted, forged (a bad signature: ignored), unknown (no such callback)",
    ["result"],
)
LAG = Gauge(
    "wirewatch_consumer_lag",
    "Records on a partition this worker is assigned that are past its group's committed offset",
    ["topic", "partition"],
)

#: When the offset guard last reported a stall (time.monotonic), for the readiness probe.
last_stall = float("-inf")


def stalled() -> None:
    global last_stall
    last_stall = time.monotonic()


def outcome_label(outcome: str) -> str:
    """A stage's outcome as a label: its words before any detail ("duplicate: same text as ..." is
    "duplicate")."""
    return outcome.split(":", 1)[0].strip().replace(" ", "_") or "unknown"


def reason_label(reason: str) -> str:
    """A dead letter's reason class as a label: one of the known ones, else "exception" (an exception's
    name would be unbounded)."""
    return reason if reason in REASON_CLASSES else "exception"


def serve(address: str) -> int:
    """Serve /metrics on HOST:PORT (port 0: any free one); return the port."""
    host, _, port = address.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1")
    return int(server.server_port)
