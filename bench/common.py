"""What the benchmarks share: synthetic articles, worker processes, and CPU and memory read from /proc."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import sys
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.site import Page  # noqa: E402
from tests.factories import worker_argv  # noqa: E402
from tests.synthetic import TOWNS, report  # noqa: E402

PLACES = ["Sirte", "Jufra", "Derna", "Misrata", "Tarhuna", "Benghazi", "Kidal", "Menaka", "Idlib", "Marib"]
#: The environment every benchmark worker gets: the bench site is on loopback, allowed explicitly and
#: fetched without a politeness delay.
LOOPBACK = {
    "WIREWATCH_ALLOW_NETWORKS": "127.0.0.0/8",
    "WIREWATCH_HOST_DELAY": "0",
    "WIREWATCH_HOST_CONCURRENCY": "8",
}


def articles(n: int, seed: int = 11, watched_share: float = 1.0) -> list[Page]:
    """n reports of 600 to 1,500 words, none a near-duplicate of another; `watched_share` of them about a
    watched place, the others about towns no watchlist names."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        watched = watched_share >= 1.0 or rng.random() < watched_share
        place = PLACES[i % len(PLACES)] if watched else rng.choice(TOWNS)
        page = report(i, place, rng.randint(600, 1500), seed)
        # Readers' comments, some naming a watched place: they are on the page, never in the article.
        comments = tuple(
            rng.choice(COMMENTS).format(place=rng.choice(PLACES + TOWNS)) for _ in range(rng.randint(2, 8))
        )
        out.append(dataclasses.replace(page, comments=comments))
    return out


COMMENTS = [
    "Nobody in {place} believes a word of this.",
    "My cousin lives near {place} and says the roads are still closed.",
    "Why does nobody report what happened in {place} last year?",
    "Thank you for covering this, the situation is terrible.",
    "Same story every month. When will it change?",
    "The photos from {place} tell a different story.",
]
#: The bench site's sidebar: most-read headlines, some naming watched places.
SIDEBAR = [
    f"{place} {what}"
    for place, what in zip(
        PLACES[:4] + TOWNS[:4],
        ["market reopens", "talks stall", "water crisis deepens", "school year begins"] * 2,
        strict=True,
    )
]


def watchlist_yaml(extra: int = 0) -> str:
    """The bench watchlist: the watched places, plus made-up people and places up to `extra` watches."""
    lines = [f"  - {{id: {p.lower()}, kind: location, name: {p}}}\n" for p in PLACES]
    if extra:
        from matching import synthetic_watches

        for w in synthetic_watches(extra)[: max(0, extra - len(PLACES))]:
            if w.name not in PLACES:
                # JSON strings are YAML too, and quote an apostrophe safely ("Jama'at").
                lines.append(f"  - {{id: x-{w.id}, kind: {w.kind}, name: {json.dumps(w.name)}}}\n")
    return "watches:\n" + "".join(lines)


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a process, from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The live child processes of pid."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat[0] == pid:
                out.append(int(entry.name))
    return out


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_by_role(workers: list[int], broker_marker: str) -> dict[str, float]:
    """CPU seconds so far of the workers' agent processes, their CPU processes, the broker and this bench."""
    out = {"agent processes": 0.0, "CPU processes": 0.0, "broker": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stat = proc_stat(pid)
        if stat is None:
            continue
        if pid in workers:
            out["agent processes"] += stat[1]
        elif stat[0] in workers:
            out["CPU processes"] += stat[1]
        else:
            try:
                if broker_marker in (entry / "cmdline").read_text(errors="replace"):
                    out["broker"] += stat[1]
            except OSError:
                pass
    times = os.times()
    out["bench and site"] = times.user + times.system
    return out


async def spawn_worker(
    broker: str,
    work: Path,
    name: str,
    env: dict[str, str],
    stdout: int | None = asyncio.subprocess.DEVNULL,
    stderr: int | IO[bytes] | None = asyncio.subprocess.DEVNULL,
    log_level: str = "warning",
) -> asyncio.subprocess.Process:
    """`wirewatch worker` over work/feeds.txt and work/watchlist.yaml, with a data directory of its own."""
    return await asyncio.create_subprocess_exec(
        *worker_argv(broker, work / "feeds.txt", work / "watchlist.yaml", work / f"data-{name}", log_level),
        stdout=stdout,
        stderr=stderr,
        cwd=ROOT,
        env={**os.environ, **LOOPBACK, **env},
    )


async def stop(procs: list[asyncio.subprocess.Process]) -> None:
    for p in procs:
        if p.returncode is None:
            p.terminate()
    for p in procs:
        await p.wait()
