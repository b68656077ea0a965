"""Shared fixtures: golden files, the embedded broker, a loopback news site and per-test settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from streams.kafka.broker import EmbeddedBroker
from streams.settings import Settings, load_settings
from streams.site import SiteServer, load_site

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
KAFKA_NEEDS = "the Apache Kafka tests need Java 17+ and Maven (apt-get install openjdk-17-jdk-headless maven)"
#: Every test site is served on loopback, which wirewatch refuses to fetch unless told otherwise; the
#: politeness delay would only slow a test down, and one CPU process per wirewatch process is plenty for
#: the tests' few articles. Set for the processes the tests start, too.
TEST_ENV = {
    "WIREWATCH_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
    "WIREWATCH_HOST_DELAY": "0",
    "WIREWATCH_CPU_WORKERS": "1",
    # No console unless a test asks for one: many pipelines start here, and its port is one per machine.
    "WIREWATCH_CONSOLE_ADDRESS": "",
}
os.environ.update(TEST_ENV)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Tansu broker for the session; tests keep apart by topic prefix and consumer group."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as broker:
        yield broker.url


def need_kafka_tools() -> None:
    """Skip without Java and Maven, saying what to install; in CI a skipped broker is a failure."""
    if not (shutil.which("java") and shutil.which("mvn")):
        if os.environ.get("CI"):
            pytest.fail(KAFKA_NEEDS)
        pytest.skip(KAFKA_NEEDS)


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Apache Kafka broker (KRaft, single node) from deploy/kafka/up, or WIREWATCH_TEST_KAFKA."""
    given = os.environ.get("WIREWATCH_TEST_KAFKA")
    if given:
        yield given if given.startswith("kafka://") else f"kafka://{given}"
        return
    need_kafka_tools()
    data = tmp_path_factory.mktemp("apache-kafka")
    up = subprocess.run(
        [str(ROOT / "deploy" / "kafka" / "up"), str(data)], capture_output=True, text=True, timeout=900
    )
    if up.returncode != 0:
        pytest.fail(f"deploy/kafka/up failed:\n{up.stderr}")
    try:
        yield "kafka://" + (data / "bootstrap").read_text().strip()
    finally:
        subprocess.run([str(ROOT / "deploy" / "kafka" / "down"), str(data)], timeout=60, check=False)


@pytest.fixture(params=["embedded", "apache-kafka"])
def any_broker(request: pytest.FixtureRequest) -> str:
    """Each broker wirewatch supports in turn: the embedded Tansu, then Apache Kafka."""
    name = "embedded_broker" if request.param == "embedded" else "apache_kafka"
    url: str = request.getfixturevalue(name)
    return url


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
        allow_networks=("127.0.0.0/8",),
        host_delay=0.0,
        cpu_workers=1,
        console_address="",
    )


@pytest.fixture
async def demo_site() -> AsyncIterator[SiteServer]:
    server = SiteServer(load_site())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
