"""Kills and broker bounces on Apache Kafka, run again and again: does every article still alert?"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from common import LOOPBACK, ROOT, spawn_worker, stop

from streams.kafka.topics import ALERTS
from streams.site import SiteServer
from tests.integration.kafka_read import distinct_alerts
from tests.synthetic import FAULT_WATCHLIST, front_line_site

RESUMED = "streams resumed after rebalance"
LEADER = "this worker leads the group"
STALL = "nothing handled"
UNHANDLED = "without an agent handling them"
HOLE = "were never handled"
#: How a worker's log line begins (Faust's format): "[2026-11-30 18:13:44,262] [3994] [INFO] ...".
STAMP = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


@dataclass
class Outcome:
    """What one run of a scenario measured."""

    name: str
    expected: int
    alerted: int = 0
    records: int = 0
    resumed_after: float | None = None
    stalls: int = 0
    unhandled: int = 0
    holes: int = 0
    exits: list[int | None] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.alerted == self.expected and not self.problems

    def line(self) -> str:
        resumed = "never" if self.resumed_after is None else f"{self.resumed_after:5.1f} s"
        verdict = "PASS" if self.passed else "FAIL " + "; ".join(self.problems)
        return (
            f"{self.name:<42} alerted {self.alerted:>4}/{self.expected}"
            f"  redelivered {self.records - self.alerted:>3}"
            f"  resumed {resumed:>8}  stalls {self.stalls}  unhandled acks {self.unhandled}"
            f"  holes read again {self.holes}  {verdict}"
        )


def kafka(script: str, data: Path) -> None:
    out = subprocess.run([str(ROOT / "deploy/kafka" / script), str(data)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"deploy/kafka/{script} failed:\n{out.stderr}")


def log_times(path: Path, marker: str) -> list[float]:
    """The wall-clock times of the log lines of a worker that contain marker."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        stamp = STAMP.match(line)
        if marker in line and stamp:
            out.append(datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return out


async def wait_for_log(path: Path, marker: str, timeout: float) -> bool:
    """Whether a line with marker appears in the log within timeout seconds."""
    deadline = time.monotonic() + timeout
    while not log_times(path, marker):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)  # the pace of re-reading; the loop checks a condition
    return True


class Scenario:
    """One run: a site of n reports, two workers on their own topics, a fault, and the alerts counted."""

    def __init__(self, broker: str, work: Path, n: int, name: str) -> None:
        self.broker = broker
        self.n = n
        self.tag = uuid.uuid4().hex[:8]
        self.work = work / self.tag
        self.work.mkdir(parents=True)
        self.env = {
            "WIREWATCH_APP_ID": f"faults-{self.tag}",
            "WIREWATCH_TOPIC_PREFIX": f"f{self.tag}.",
            "WIREWATCH_PARTITIONS": "4",
            "WIREWATCH_POLL_INTERVAL": "3600",
        }
        self.outcome = Outcome(name, n)
        self.procs: list[asyncio.subprocess.Process] = []
        self.logs: list[Path] = []
        self.site: SiteServer | None = None

    async def __aenter__(self) -> Scenario:
        self.site = SiteServer(front_line_site(self.n))
        await self.site.start()
        (self.work / "feeds.txt").write_text(self.site.feed_url + "\n")
        (self.work / "watchlist.yaml").write_text(FAULT_WATCHLIST)
        for k in range(2):
            await self.start_worker(k)
        return self

    async def start_worker(self, k: int) -> None:
        log = self.work / f"worker{k}.{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as stderr:
            proc = await spawn_worker(
                self.broker, self.work, str(k), self.env, stderr=stderr, log_level="info"
            )
        if k < len(self.procs):
            self.procs[k] = proc
        else:
            self.procs.append(proc)

    def log_of(self, k: int) -> Path:
        return [p for p in self.logs if p.name.startswith(f"worker{k}.")][-1]

    def leader(self) -> int:
        """The worker that polls the feed (the group's leader)."""
        return next((k for k in range(2) if log_times(self.log_of(k), LEADER)), 0)

    async def alerts(self, want: int, timeout: float) -> list[tuple[str, dict[str, object]]]:
        return await distinct_alerts(self.broker, f"f{self.tag}.{ALERTS}", want, timeout)

    async def finish(self, timeout: float) -> None:
        records = await self.alerts(self.n, timeout)
        o = self.outcome
        urls: dict[str, set[str]] = {}
        for key, alert in records:
            urls.setdefault(key, set()).add(str(alert["url"]))
        o.records = len(records)
        o.alerted = len({u for us in urls.values() for u in us})
        if any(len(us) > 1 for us in urls.values()):
            o.problems.append("an alert id names two articles")
        if o.alerted < o.expected:
            o.problems.append(f"{o.expected - o.alerted} never alerted")
            for proc in self.procs:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGUSR1)
            print(await lag_report(self.broker, f"faults-{self.tag}", f"f{self.tag}."), flush=True)
        o.stalls = sum(len(log_times(p, STALL)) for p in self.logs)
        o.unhandled = sum(len(log_times(p, UNHANDLED)) for p in self.logs)
        o.holes = sum(len(log_times(p, HOLE)) for p in self.logs)

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                async with asyncio.timeout(60):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                self.outcome.problems.append("a worker did not stop on SIGTERM")
        await stop(self.procs)
        self.outcome.exits = [p.returncode for p in self.procs]
        if any(code not in (0, -signal.SIGKILL) for code in self.outcome.exits):
            self.outcome.problems.append(f"exit codes {self.outcome.exits}")
        if self.site is not None:
            await self.site.stop()
        if self.outcome.passed:  # a failed run's topics stay, to be looked at
            await delete_topics(self.broker, f"f{self.tag}.", f"faults-{self.tag}-")


async def delete_topics(broker: str, *prefixes: str) -> None:
    """Remove a finished run's topics, so that later runs share the broker with no more than they need."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.removeprefix("kafka://"))
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def lag_report(broker: str, group: str, prefix: str) -> str:
    """Per agent topic: records on the broker, and how many of them the group has not committed yet."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.removeprefix("kafka://"))
    reader = AIOKafkaConsumer(bootstrap_servers=broker.removeprefix("kafka://"))
    await admin.start()
    await reader.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        names = [t for t in await reader.topics() if t.startswith(prefix)]
        tps = [TopicPartition(t, p) for t in names for p in reader.partitions_for_topic(t) or ()]
        ends = await reader.end_offsets(tps)
        lines = []
        for tp in sorted(tps):
            done = committed[tp].offset if tp in committed else 0
            if ends[tp] > done:
                lines.append(f"    {tp.topic}[{tp.partition}]: end {ends[tp]}, committed {done}")
        return "  uncommitted records:\n" + ("\n".join(lines) or "    none")
    finally:
        await reader.stop()
        await admin.close()


async def first_record_after(broker: str, topic: str, since: float, timeout: float) -> float | None:
    """The time stamp (seconds) of the topic's first record stamped at or after `since`, waiting for one."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reader = AIOKafkaConsumer(bootstrap_servers=broker.removeprefix("kafka://"), enable_auto_commit=False)
        await reader.start()
        try:
            await reader._client.force_metadata_update()  # a topic this reader never subscribed to
            tps = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
            stamps = await reader.offsets_for_times(dict.fromkeys(tps, int(since * 1000)))
            found = [found.timestamp / 1000 for found in stamps.values() if found is not None]
        finally:
            await reader.stop()
        if found:
            return min(found)
        await asyncio.sleep(1)  # the pace of asking again; the loop checks a condition
    return None


async def kill_run(broker: str, work: Path, n: int, i: int, victim: str, restart: bool) -> Outcome:
    name = f"kill {i + 1:>2}: {victim}{', restarted after 20 s' if restart else ''}"
    async with Scenario(broker, work, n, name) as sc:
        await sc.alerts(int(n * 0.3), timeout=180)
        leader = sc.leader()
        k = leader if victim == "the poller's worker" else 1 - leader
        sc.procs[k].kill()
        killed_at = time.time()
        await sc.procs[k].wait()
        if restart:
            await asyncio.sleep(20)  # the fault itself: a supervisor restarts the worker 20 s later
            await sc.start_worker(k)
            # It takes part again once it has joined the group and resumed streams of its own.
            if not await wait_for_log(sc.log_of(k), RESUMED, timeout=120):
                sc.outcome.problems.append("the restarted worker never resumed streams")
        await sc.finish(timeout=180)
        resumed = [t for t in log_times(sc.log_of(1 - k), RESUMED) if t > killed_at]
        sc.outcome.resumed_after = resumed[0] - killed_at if resumed else None
    return sc.outcome


async def bounce_run(broker: str, kafka_dir: Path, work: Path, n: int, i: int, down_for: float) -> Outcome:
    async with Scenario(broker, work, n, f"bounce {i + 1:>2}: broker down {down_for:.0f} s") as sc:
        await sc.alerts(int(n * 0.3), timeout=180)
        await asyncio.to_thread(kafka, "down", kafka_dir)
        await asyncio.sleep(down_for)  # the fault itself: the broker is away this long
        await asyncio.to_thread(kafka, "up", kafka_dir)
        up_at = time.time()
        # Resumed: the first alert the broker stamped after it came back (no rebalance marks it here).
        first = await first_record_after(broker, f"f{sc.tag}.{ALERTS}", up_at, timeout=120)
        # The search asks in whole milliseconds, so a record may be stamped up to 1 ms before up_at.
        sc.outcome.resumed_after = None if first is None else max(0.0, first - up_at)
        await sc.finish(timeout=180)
    return sc.outcome


def summary(title: str, outcomes: list[Outcome]) -> None:
    times = [o.resumed_after for o in outcomes if o.resumed_after is not None]
    spread = f"median {statistics.median(times):.1f} s, max {max(times):.1f} s" if times else "none measured"
    passed = sum(o.passed for o in outcomes)
    print(f"{title}: {passed}/{len(outcomes)} passed; resumed after the fault: {spread}", flush=True)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--bounces", type=int, default=10)
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--busy", action="store_true", help="keep one core busy with another process")
    parser.add_argument("--keep", type=Path, help="keep the workers' logs here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--always-restart", action="store_true", help="restart the killed one in every run")
    parser.add_argument(
        "--recovery-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="make table recovery wait S seconds after seeking its changelogs (widens the race of issue 11)",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    # The bench's own topic reader: its retries while a broker is away are expected, not news.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    os.environ.update(LOOPBACK)
    work = args.keep or Path(tempfile.mkdtemp(prefix="wirewatch-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    kafka_dir = work / "kafka"
    kafka("up", kafka_dir)
    broker = "kafka://" + (kafka_dir / "bootstrap").read_text().strip()
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    if args.recovery_delay:
        # The workers inherit this environment: Python loads bench/widen_recovery/sitecustomize.py.
        widen = str(Path(__file__).parent / "widen_recovery")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (widen, os.environ.get("PYTHONPATH")) if p)
        os.environ["WIREWATCH_BENCH_RECOVERY_DELAY"] = str(args.recovery_delay)
    print(
        f"Apache Kafka at {broker}; 2 workers, 4 partitions, {args.articles} articles a run"
        f"{'; one core kept busy by another process' if burner else ''}"
        f"{f'; table recovery waits {args.recovery_delay} s after seeking' if args.recovery_delay else ''}",
        flush=True,
    )
    kills: list[Outcome] = []
    bounces: list[Outcome] = []
    try:
        for i in range(args.kills):
            victim = ["the poller's worker", "the other worker"][i % 2]
            restart = args.always_restart or i % 4 >= 2
            outcome = await kill_run(broker, work, args.articles, i, victim, restart)
            print(outcome.line(), flush=True)
            kills.append(outcome)
        for i in range(args.bounces):
            outcome = await bounce_run(broker, kafka_dir, work, args.articles, i, rng.uniform(10, 30))
            print(outcome.line(), flush=True)
            bounces.append(outcome)
    finally:
        if burner is not None:
            burner.kill()
        kafka("down", kafka_dir)
    if kills:
        summary("kills", kills)
    if bounces:
        summary("bounces", bounces)
    if not args.keep:
        print(f"(workers' logs in {work})")
    return 0 if all(o.passed for o in kills + bounces) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
