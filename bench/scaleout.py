"""Scale-out benchmark: the same 300+ articles through one and then two worker processes on Apache Kafka.

Prints articles per second for each run and their ratio. Run: python bench/scaleout.py [--articles N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from common import ROOT, articles, cpu_by_role, spawn_worker, stop, watchlist_yaml

from streams.site import Page, Site, SiteServer


def kafka(action: str, data: Path) -> str:
    out = subprocess.run([str(ROOT / "deploy" / "kafka" / action), str(data)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return out.stdout


async def run(workers: int, pages: list[Page], broker: str, work: Path) -> tuple[float, float]:
    """Articles per second from the poll that found them to the last alert, with `workers` processes,
    and the CPU seconds the whole machine spent per article meanwhile."""
    site = SiteServer(Site("Bench Wire", "", [], []))
    await site.start()
    (work / "feeds.txt").write_text(site.feed_url + "\n")
    (work / "watchlist.yaml").write_text(watchlist_yaml())
    tag = uuid.uuid4().hex[:8]
    env = {
        "WIREWATCH_APP_ID": f"bench-{tag}",
        "WIREWATCH_TOPIC_PREFIX": f"b{tag}.",
        "WIREWATCH_POLL_INTERVAL": "1",
        # The feed is polled every second: the schedule's floor (30 s by default) is lowered to match.
        "WIREWATCH_MIN_INTERVAL": "1",
        "WIREWATCH_PARTITIONS": "4",
        "WIREWATCH_CPU_WORKERS": "1",
    }
    procs = [
        await spawn_worker(broker, work, f"{tag}-{k}", env, stdout=asyncio.subprocess.PIPE)
        for k in range(workers)
    ]
    try:
        # Ready once the leader has polled the (still empty) feed a few times: group joined, models loaded.
        async with asyncio.timeout(180):
            while site.requests.count("/feed.xml") < 3:
                await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # let the other worker finish joining before the work arrives
        marker = str(work / "kafka")
        before = cpu_by_role([p.pid for p in procs], marker)
        site.site.pages.extend(pages)
        started = time.monotonic()
        seen: set[str] = set()

        async def drain(proc: asyncio.subprocess.Process) -> None:
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                seen.add(line[:60].decode(errors="replace"))

        readers = [asyncio.ensure_future(drain(p)) for p in procs]
        async with asyncio.timeout(1800):
            while len(seen) < len(pages):
                await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        after = cpu_by_role([p.pid for p in procs], marker)
        used = {role: after[role] - before[role] for role in after}
        print(
            f"  {elapsed:.1f} s wall, CPU seconds: "
            + ", ".join(f"{role} {sec:.1f}" for role, sec in used.items())
            + f" (of {elapsed * (os.cpu_count() or 1):.1f} available)"
        )
        for r in readers:
            r.cancel()
        return len(pages) / elapsed, sum(used.values()) / len(pages)
    finally:
        await stop(procs)
        await site.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=300)
    args = parser.parse_args()
    pages = articles(args.articles)
    words = sum(len(" ".join(p.body).split()) for p in pages) / len(pages)
    with tempfile.TemporaryDirectory(prefix="wirewatch-bench-") as tmp:
        work = Path(tmp)
        print(kafka("up", work / "kafka").strip())
        broker = "kafka://" + (work / "kafka" / "bootstrap").read_text().strip()
        try:
            print(f"{len(pages)} articles of {words:.0f} words on average; Apache Kafka, 4 partitions")
            one, cost = await run(1, pages, broker, work)
            print(f"1 worker process:  {one:5.2f} articles/s")
            two, _ = await run(2, pages, broker, work)
            print(f"2 worker processes: {two:5.2f} articles/s")
            cores = os.cpu_count() or 1
            print(f"ratio 2/1: {two / one:.2f}  (cores: {cores})")
            # The broker, the agent processes and the site share the cores with the CPU processes, so
            # even perfect scaling stops where all cores are busy at the measured cost per article.
            print(
                f"ceiling on this machine: {cores / cost:.2f} articles/s at {cost * 1000:.0f} CPU-ms per "
                f"article, a ratio of at most {cores / cost / one:.2f}"
            )
        finally:
            kafka("down", work / "kafka")


if __name__ == "__main__":
    asyncio.run(main())
