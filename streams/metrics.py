"""The worker's Prometheus counters, served on /metrics when metrics_address is set."""

from __future__ import annotations

from prometheus_client import Counter, start_http_server

# One label, the topic: a handful of values per deployment, never one per feed, article or partition.
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


def serve(address: str) -> int:
    """Serve /metrics on HOST:PORT (port 0: any free one); return the port."""
    host, _, port = address.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1")
    return int(server.server_port)
