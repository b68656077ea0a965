"""Scale-out benchmark: the same 300+ articles through one and then two worker processes on Apache Kafka.

Prints articles per second for each run and their ratio. Run: python bench/scaleout.py [--articles N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.site import Page, Site, SiteServer  # noqa: E402

PLACES = ["Sirte", "Jufra", "Derna", "Misrata", "Tarhuna", "Benghazi", "Kidal", "Menaka", "Idlib", "Marib"]
OPENINGS = [
    "Residents of {place} said on {day} that {n} families had left their homes after a night of shelling",
    "Officials in {place} reported that {n} people were treated at the main hospital on {day}",
    "A convoy of {n} trucks carrying flour and medicine reached {place} on {day}, aid workers said",
]
MIDDLES = [
    "Council members described damage to water pipes and power lines, and said repairs would take weeks.",
    "Diplomats said talks on a ceasefire had stalled over the withdrawal of foreign fighters from the area.",
    "Traders said the price of bread had doubled since the road to the coast was closed by checkpoints.",
    "Teachers said schools would stay shut until the security situation improved and fuel supplies resumed.",
    "A spokesman for the health ministry said field clinics were short of anaesthetics and blood bags.",
    "Analysts said the fighting could spread to nearby oil installations if neither side pulled back soon.",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def articles(n: int, seed: int = 11) -> list[Page]:
    """n articles of 600 to 1,500 words, each naming one watched place."""
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        place = PLACES[i % len(PLACES)]
        first = rng.choice(OPENINGS).format(place=place, day=rng.choice(DAYS), n=rng.randint(3, 400)) + "."
        body = [first]
        words = len(first.split())
        target = rng.randint(600, 1500)
        while words < target:
            para = " ".join(rng.sample(MIDDLES, 3)) + f" (Report {i}, paragraph {len(body)}.)"
            body.append(para)
            words += len(para.split())
        pages.append(Page(f"a{i}", f"Report {i}: {place}", "2021-05-01T08:00:00Z", "By Staff", tuple(body)))
    return pages


def kafka(action: str, data: Path) -> str:
    out = subprocess.run([str(ROOT / "deploy" / "kafka" / action), str(data)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return out.stdout


async def run(workers: int, pages: list[Page], broker: str, work: Path) -> float:
    """Articles per second from the poll that found them to the last alert, with `workers` processes."""
    site = SiteServer(Site("Bench Wire", "", [], []))
    await site.start()
    (work / "feeds.txt").write_text(site.feed_url + "\n")
    (work / "watchlist.yaml").write_text(
        "watches:\n" + "".join(f"  - {{id: {p.lower()}, kind: location, name: {p}}}\n" for p in PLACES)
    )
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "WIREWATCH_APP_ID": f"bench-{tag}",
        "WIREWATCH_TOPIC_PREFIX": f"b{tag}.",
        "WIREWATCH_POLL_INTERVAL": "1",
        "WIREWATCH_PARTITIONS": "4",
    }
    procs = []
    for k in range(workers):
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "streams.cli",
                "worker",
                "--broker",
                broker,
                "--format",
                "jsonl",
                "--feeds",
                str(work / "feeds.txt"),
                "--watchlist",
                str(work / "watchlist.yaml"),
                "--data-dir",
                str(work / f"data-{tag}-{k}"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                cwd=ROOT,
                env=env,
            )
        )
    try:
        # Ready once the leader has polled the (still empty) feed a few times: group joined, models loaded.
        async with asyncio.timeout(180):
            while site.requests.count("/feed.xml") < 3:
                await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # let the other worker finish joining before the work arrives
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
        for r in readers:
            r.cancel()
        return len(pages) / elapsed
    finally:
        for p in procs:
            if p.returncode is None:
                p.terminate()
                await p.wait()
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
            one = await run(1, pages, broker, work)
            print(f"1 worker process:  {one:5.2f} articles/s")
            two = await run(2, pages, broker, work)
            print(f"2 worker processes: {two:5.2f} articles/s")
            print(f"ratio 2/1: {two / one:.2f}  (cores: {os.cpu_count()})")
        finally:
            kafka("down", work / "kafka")


if __name__ == "__main__":
    asyncio.run(main())
