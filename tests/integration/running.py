"""A whole pipeline running in the test's event loop, over one feed and the demo watchlist, until the block ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from streams.names.watchlist import load_watchlist
from streams.pipeline.runner import run_pipeline
from streams.pipeline.runtime import AlertSink
from streams.settings import Settings
from streams.site import demo_watchlist_path


@contextlib.asynccontextmanager
async def pipeline_running(settings: Settings, feed_url: str, sinks: list[AlertSink]) -> AsyncIterator[None]:
    watches = load_watchlist(demo_watchlist_path())
    task = asyncio.create_task(
        run_pipeline(settings, feeds=[feed_url], watches=watches, once=False, sinks=sinks)
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
