"""Starts a wirewatch process: broker (embedded or given), Faust worker, agents; stops it all in order."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import io
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust

from streams import metrics
from streams.alerting.routes import Routing
from streams.console.server import Console, serving
from streams.ingest.feeds import FeedSpec
from streams.kafka.broker import EmbeddedBroker, ensure_topics, supports_idempotence
from streams.names.watchlist import Watch
from streams.pipeline.runtime import AlertSink, Runtime, build_runtime
from streams.records import Delivery
from streams.settings import Settings

log = logging.getLogger("wirewatch")


class AgentDied(RuntimeError):
    """An agent failed in a way it could not record; the process must not go on without it."""


class PipelineTimeout(RuntimeError):
    """`--once` gave up waiting: some items did not reach the end of the pipeline in time."""


@dataclass
class RunResult:
    """What one run did: item outcomes by canonical item URL."""

    outcomes: dict[str, str] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    #: Feeds whose last poll failed: (reason class, message), by feed URL.
    feed_failures: dict[str, tuple[str, str]] = field(default_factory=dict)
    feeds: int = 0


def log_tasks(runtime: Runtime | None = None) -> None:
    """Log where every task of this process is waiting: what an operator asks of a worker that seems stuck."""
    guard = runtime.app.offset_guard if runtime is not None else None  # type: ignore[attr-defined]
    if guard is not None:
        log.warning("SIGUSR1: the consumer\n%s", guard.describe())
    out = io.StringIO()
    tasks = asyncio.all_tasks()
    for task in sorted(tasks, key=lambda t: t.get_name()):
        print(f"--- {task.get_name()}: {task.get_coro()!r}", file=out)
        task.print_stack(limit=12, file=out)
    log.warning("SIGUSR1: %d task(s)\n%s", len(tasks), out.getvalue())
    # The Kafka consumer runs an event loop on a thread of its own: its stack is in the threads' dump.
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)


async def _report(runtime: Runtime, on_progress: Callable[[int, int], object]) -> None:
    """Items through and items known, twice a second, for a progress bar (until cancelled)."""
    while True:
        done = len(runtime.progress.outcomes)
        on_progress(done, done + len(runtime.progress.pending))
        await asyncio.sleep(0.5)


def _own_signals(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event, runtime: Runtime | None = None
) -> None:
    """Ours, not the Faust worker's: SIGINT or SIGTERM ends the run's wait, then everything stops in order."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGUSR1, log_tasks, runtime)


async def run_pipeline(
    settings: Settings,
    *,
    feeds: list[str],
    watches: list[Watch],
    once: bool,
    sinks: list[AlertSink],
    once_timeout: float = 600.0,
    log_level: str = "warning",
    routing: Routing | None = None,
    on_progress: Callable[[int, int], object] | None = None,
    feed_specs: Sequence[FeedSpec] = (),
) -> RunResult:
    """Run every agent in this process until stopped or, with once, until every item is through."""
    broker: EmbeddedBroker | None = None
    broker_url = settings.broker
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # From the first moment, so that a supervisor's SIGTERM while the model loads also stops it in order.
    _own_signals(loop, stop)
    if broker_url is None:
        broker = EmbeddedBroker(log_path=settings.data_dir / "embedded-broker.log")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        broker_url = broker.start()
        log.info("embedded broker on %s", broker_url)
    runtime: Runtime | None = None
    worker: faust.Worker | None = None
    stack = contextlib.AsyncExitStack()
    try:
        idempotent = settings.idempotence == "on" or (
            settings.idempotence == "auto" and broker is None and await supports_idempotence(broker_url)
        )
        if settings.idempotence == "auto" and not idempotent:
            log.info("the broker grants no producer ids: producers use acks=all without idempotence")
        runtime = build_runtime(
            settings,
            broker_url,
            feeds=feeds,
            watches=watches,
            once=once,
            embedded_broker=broker is not None,
            idempotent=idempotent,
            routing=routing,
            agents=settings.agents or None,
            feed_specs=feed_specs,
        )
        runtime.alert_sinks.extend(sinks)
        if settings.metrics_address:
            port = metrics.serve(settings.metrics_address)
            log.info("metrics on http://%s:%d/metrics", settings.metrics_address.rpartition(":")[0], port)
        await ensure_topics(broker_url, runtime.topic_specs(), settings.replication_factor)
        await runtime.warm_up()
        worker = faust.Worker(
            runtime.app,
            loop=loop,
            quiet=True,
            loglevel=log_level,
            daemon=False,
            redirect_stdouts=False,
            stdout=sys.stderr,
        )
        # The progress spinner writes cursor escapes into whatever stream it is given.
        worker.spinner = None
        pending = runtime.dedupe.pending_deliveries()
        for queued in pending:
            runtime.progress.expect(queued.delivery_id)
        await worker.start()
        _own_signals(loop, stop, runtime)  # again: the Faust worker installed its own on start
        # Deliveries queued before a restart: the embedded broker lost them with its topics.
        for queued in pending:
            await runtime.send(runtime.topics.deliveries, queued.destination, Delivery.loads(queued.record))
        if pending:
            log.warning("re-queued %d delivery(ies) pending since before the restart", len(pending))
        if settings.console_address and not once:
            console = Console(settings, broker_url, watches, runtime)
            await stack.enter_async_context(serving(console, settings.console_address))
        ends: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(runtime.failed.wait()),
        ]
        waiter = asyncio.ensure_future(runtime.progress.wait_idle(once_timeout)) if once else None
        if on_progress is not None:
            ends.append(asyncio.ensure_future(_report(runtime, on_progress)))
        await asyncio.wait([*ends, *([waiter] if waiter else [])], return_when=asyncio.FIRST_COMPLETED)
        for task in ends:
            task.cancel()
        if runtime.failure is not None:
            raise AgentDied(f"an agent died: {type(runtime.failure).__name__}: {runtime.failure}")
        if waiter is not None and (not waiter.done() or not waiter.result()):
            waiter.cancel()
            if not stop.is_set():
                raise PipelineTimeout(
                    f"{len(runtime.progress.pending)} item(s) still in flight after {once_timeout:.0f}s: "
                    + ", ".join(sorted(runtime.progress.pending)[:5])
                )
        return RunResult(
            outcomes=dict(runtime.progress.outcomes),
            pending=set(runtime.progress.pending),
            feed_failures=dict(runtime.progress.feed_failures),
            feeds=len(feeds),
        )
    finally:
        await stack.aclose()
        if worker is not None:
            await worker.stop()
        if runtime is not None:
            await runtime.close()
        if broker is not None:
            broker.stop()
