"""Shared fixtures: golden files, the embedded broker, a loopback news site and per-test settings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker
from streams.settings import Settings, load_settings
from streams.site import SiteServer, load_site

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Tansu broker for the session; tests keep apart by topic prefix and consumer group."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as broker:
        yield broker.url


@pytest.fixture
def unique_settings(tmp_path: Path) -> Settings:
    """Settings with a topic prefix, consumer group and data directory of this test's own."""
    tag = uuid.uuid4().hex[:10]
    return load_settings(
        None,
        env={},
        app_id=f"wirewatch-test-{tag}",
        topic_prefix=f"t{tag}.",
        data_dir=tmp_path / "data",
        partitions=2,
        poll_interval=3600.0,
    )


@pytest.fixture
async def demo_site() -> AsyncIterator[SiteServer]:
    server = SiteServer(load_site())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
