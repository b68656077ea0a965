"""Faults on Apache Kafka: the broker goes away mid-stream and comes back; nothing is lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streams.site import Page, Site, SiteServer
from tests.conftest import need_kafka_tools

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PLACES = ["Sirte", "Jufra", "Derna", "Misrata", "Tarhuna", "Benghazi"]
WATCHLIST = "watches:\n" + "".join(f"  - {{id: {p.lower()}, kind: location, name: {p}}}\n" for p in PLACES)


def _site(n: int) -> Site:
    pages = [
        Page(
            slug=f"story-{i}",
            title=f"Report {i} from {PLACES[i % len(PLACES)]}",
            date="2020-06-01T08:00:00Z",
            byline="By Staff",
            body=(
                f"Residents of {PLACES[i % len(PLACES)]} reported the sound of shelling overnight, the {i}th such "
                "report this month, according to a local council member reached by telephone on Monday.",
                f"The council said {i + 3} families had left their homes. Aid agencies said they were preparing "
                "food parcels and blankets, and asked both sides to allow safe passage for civilians.",
            ),
        )
        for i in range(n)
    ]
    return Site("Front Line Daily", "Most read", [], pages)


def _kafka(script: str, data: Path) -> str:
    out = subprocess.run(
        [str(ROOT / "deploy" / "kafka" / script), str(data)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_workers_ride_out_a_broker_outage(tmp_path: Path) -> None:
    need_kafka_tools()
    kafka = tmp_path / "kafka"
    await asyncio.to_thread(_kafka, "up", kafka)
    bootstrap = (kafka / "bootstrap").read_text().strip()
    site = SiteServer(_site(30))
    await site.start()
    (tmp_path / "feeds.txt").write_text(site.feed_url + "\n")
    (tmp_path / "watchlist.yaml").write_text(WATCHLIST)
    env = {**os.environ, "WIREWATCH_APP_ID": "outage", "WIREWATCH_POLL_INTERVAL": "3600"}
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams.cli",
        "worker",
        "--broker",
        f"kafka://{bootstrap}",
        "--format",
        "jsonl",
        "--feeds",
        str(tmp_path / "feeds.txt"),
        "--watchlist",
        str(tmp_path / "watchlist.yaml"),
        "--data-dir",
        str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE,
        # A file, not a pipe: while the broker is away the worker logs more than a pipe buffer holds,
        # and a full pipe nobody reads would block it.
        stderr=log,
        cwd=ROOT,
        env=env,
    )
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
