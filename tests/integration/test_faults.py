"""Faults on Apache Kafka: a broker outage, a worker killed mid-stream; nothing is lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import uuid
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import BinaryIO

import pytest

from streams.kafka.topics import ALERTS
from streams.site import SiteServer
from tests.conftest import need_kafka_tools
from tests.factories import worker_argv
from tests.integration.kafka_read import distinct_alerts
from tests.synthetic import FAULT_WATCHLIST, front_line_site

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
WATCHLIST = FAULT_WATCHLIST


def _kafka(script: str, data: Path) -> str:
    out = subprocess.run(
        [str(ROOT / "deploy" / "kafka" / script), str(data)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


async def _worker(
    broker: str, tmp_path: Path, data: Path, log: BinaryIO, env: dict[str, str], out: BinaryIO | int = PIPE
) -> asyncio.subprocess.Process:
    """`wirewatch worker` printing alerts as JSON lines, over tmp_path's feeds.txt and watchlist.yaml."""
    return await asyncio.create_subprocess_exec(
        *worker_argv(
            broker,
            tmp_path / "feeds.txt",
            tmp_path / "watchlist.yaml",
            data,
            os.environ.get("WIREWATCH_TEST_WORKER_LOG", "warning"),
        ),
        stdout=out,
        # A file, not a pipe: while the broker is away the worker logs more than a pipe buffer holds,
        # and a full pipe nobody reads would block it.
        stderr=log,
        cwd=ROOT,
        env={**os.environ, "WIREWATCH_POLL_INTERVAL": "3600", **env},
    )


async def test_workers_ride_out_a_broker_outage(tmp_path: Path) -> None:
    need_kafka_tools()
    kafka = tmp_path / "kafka"
    await asyncio.to_thread(_kafka, "up", kafka)
    bootstrap = (kafka / "bootstrap").read_text().strip()
    site = SiteServer(front_line_site(30))
    await site.start()
    (tmp_path / "feeds.txt").write_text(site.feed_url + "\n")
    (tmp_path / "watchlist.yaml").write_text(WATCHLIST)
    env = {"WIREWATCH_APP_ID": "outage"}
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    worker = await _worker(f"kafka://{bootstrap}", tmp_path, tmp_path / "data", log, env)
    assert worker.stdout is not None
    alerts: dict[str, dict[str, object]] = {}
    try:
        async with asyncio.timeout(120):
            while not alerts:
                line = await worker.stdout.readline()
                assert line, log_path.read_text()[-3000:]
                alert = json.loads(line)
                alerts[alert["alert_id"]] = alert
        # Mid-stream: the broker goes away for ten seconds (the fault itself, not a wait for a condition).
        await asyncio.to_thread(_kafka, "down", kafka)
        await asyncio.sleep(10)
        await asyncio.to_thread(_kafka, "up", kafka)
        try:
            async with asyncio.timeout(150):
                while len(alerts) < 30:
                    line = await worker.stdout.readline()
                    assert line, log_path.read_text()[-3000:]
                    alert = json.loads(line)
                    alerts[alert["alert_id"]] = alert
        except TimeoutError:
            pytest.fail(
                f"{len(alerts)} of 30 alerts after the outage; worker log:\n{log_path.read_text()[-6000:]}"
            )
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                await worker.wait()
        log.close()
        await site.stop()
        await asyncio.to_thread(_kafka, "down", kafka)
    assert {str(a["url"]).rsplit("/", 1)[1] for a in alerts.values()} == {
        f"story-{i}.html" for i in range(30)
    }
    assert worker.returncode == 0


async def _log_has(path: Path, text: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in path.read_text(errors="replace") and loop.time() < deadline:
        await asyncio.sleep(0.2)  # re-reading pace; the loop checks a condition


async def test_a_worker_killed_mid_stream_loses_nothing(apache_kafka: str, tmp_path: Path) -> None:
    n = 200
    site = SiteServer(front_line_site(n))
    await site.start()
    (tmp_path / "feeds.txt").write_text(site.feed_url + "\n")
    (tmp_path / "watchlist.yaml").write_text(WATCHLIST)
    tag = uuid.uuid4().hex[:10]
    env = {
        "WIREWATCH_APP_ID": f"kill-{tag}",
        "WIREWATCH_TOPIC_PREFIX": f"k{tag}.",
        "WIREWATCH_PARTITIONS": "4",
    }
    alerts_topic = f"k{tag}.{ALERTS}"
    logs = [(tmp_path / f"worker{i}.log").open("wb") for i in range(2)]
    # Alerts go to files: the test reads them from the topic, and an unread pipe would block a worker.
    outs = [(tmp_path / f"worker{i}.jsonl").open("wb") for i in range(2)]
    workers = [
        await _worker(apache_kafka, tmp_path, tmp_path / f"data{i}", logs[i], env, outs[i]) for i in range(2)
    ]
    try:
        # Kill one worker once the stream is well under way, whichever of the two is doing the work.
        started = await distinct_alerts(apache_kafka, alerts_topic, 40, timeout=180)
        assert len({k for k, _ in started}) >= 40, (tmp_path / "worker0.log").read_text()[-3000:]
        workers[0].kill()
        await workers[0].wait()
        records = await distinct_alerts(apache_kafka, alerts_topic, n, timeout=240)
        if len({k for k, _ in records}) < n:
            # Where the survivor is stuck, in its log for the failure message below.
            workers[1].send_signal(signal.SIGUSR1)
            await _log_has(tmp_path / "worker1.log", "SIGUSR1:", timeout=10)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
                async with asyncio.timeout(60):
                    await worker.wait()
        for f in [*logs, *outs]:
            f.close()
        await site.stop()
    by_id: dict[str, set[str]] = {}
    for key, alert in records:
        by_id.setdefault(key, set()).add(str(alert["url"]))
    missing = {f"story-{i}.html" for i in range(n)} - {
        u.rsplit("/", 1)[1] for urls in by_id.values() for u in urls
    }
    assert not missing, (
        f"{len(missing)} article(s) never alerted, e.g. {sorted(missing)[:5]}; survivor's log:\n"
        + (tmp_path / "worker1.log").read_text()[-30000:]
    )
    assert len(by_id) == n
    assert all(len(urls) == 1 for urls in by_id.values())  # an alert id always names the same article
    # At least once: the records the killed worker published but had not committed come again.
    print(f"{len(records)} alert records for {n} articles ({len(records) - n} redelivered)")
    assert workers[0].returncode == -signal.SIGKILL
    assert workers[1].returncode == 0, (tmp_path / "worker1.log").read_text()[-3000:]
