"""The web console, metrics and health probes of a worker (or of `wirewatch console` alone), on aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from streams import metrics
from streams.ingest.clean import ExtractionFailed, clean_html
from streams.ingest.fetch import FetchError, HostGate, Limits, SafeClient, decode_html
from streams.ingest.netguard import AddressPolicy, parse_allowed
from streams.ingest.publish import parse_in_cpu, publish_items
from streams.kafka.topics import ALERTS, DEADLETTER, FEEDS_HEALTH
from streams.names.match import Matcher, VariantMatcher, explain
from streams.names.watchlist import Watch
from streams.pipeline.topology import PIPELINE
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.pipeline.runtime import Runtime

log = logging.getLogger("wirewatch")

#: How many recent alerts and dead letters the console keeps, and reads back from the topics at start.
RECENT = 200
#: The longest text the "try it" box takes.
MAX_TRY_CHARS = 200_000
#: A stall reported this recently makes a worker not ready.
STALL_WINDOW = 60.0

#: No script, style or connection from anywhere but the console itself; no framing, no plugins.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_STATIC = {"console.js": "text/javascript", "console.css": "text/css"}


@dataclass
class Console:
    """What the console shows: recent alerts and dead letters and every feed's health (all read from their
    topics, so one console sees the whole group), the watchlist, and the worker it runs in, if any."""

    settings: Settings
    broker: str
    watches: list[Watch]
    runtime: Runtime | None = None
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT))
    dead_letters: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT))
    feeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    _listeners: set[asyncio.Queue[bytes]] = field(default_factory=set)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _matcher: Matcher | None = None
    _web: SafeClient | None = None

    # -- reading the topics ----------------------------------------------------------------------------
    async def start(self) -> None:
        prefix = self.settings.topic_prefix
        for topic, history, keep in (
            (prefix + ALERTS, RECENT, self._alert),
            (prefix + DEADLETTER, RECENT, self._dead_letter),
            (prefix + FEEDS_HEALTH, None, self._feed),
        ):
            self._tasks.append(asyncio.create_task(self._follow(topic, history, keep)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._web is not None:
            await self._web.close()

    async def _follow(self, topic: str, history: int | None, keep: Callable[[dict[str, Any]], None]) -> None:
        """Every record of the topic from `history` records before its end (None: all), as they come."""
        while True:
            try:
                await self._read(topic, history, keep)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker went away: the console waits for it, it does not die
                log.warning("console: reading %s: %s: %s; again in 5 s", topic, type(exc).__name__, exc)
                await asyncio.sleep(5.0)

    async def _read(self, topic: str, history: int | None, keep: Callable[[dict[str, Any]], None]) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.broker.removeprefix("kafka://"), enable_auto_commit=False
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic)
            while not partitions:
                await asyncio.sleep(1.0)  # the pipeline creates its topics as it starts
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            starts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
            for tp in tps:
                back = starts[tp] if history is None else max(starts[tp], ends[tp] - history)
                consumer.seek(tp, back)
            async for message in consumer:
                try:
                    keep(orjson.loads(message.value))
                except orjson.JSONDecodeError:
                    continue  # not wirewatch's: the stages dead-letter those, the console skips them
        finally:
            await consumer.stop()

    def _alert(self, alert: dict[str, Any]) -> None:
        self.alerts.append(alert)
        event = b"data: " + orjson.dumps(alert) + b"\n\n"
        for queue in list(self._listeners):
            if queue.qsize() < 1000:  # a reader that stopped reading loses events, not our memory
                queue.put_nowait(event)

    def _dead_letter(self, letter: dict[str, Any]) -> None:
        self.dead_letters.append(letter)

    def _feed(self, health: dict[str, Any]) -> None:
        self.feeds[str(health.get("feed_url"))] = health

    # -- what it computes ------------------------------------------------------------------------------
    def matcher(self) -> Matcher:
        if self._matcher is None:
            self._matcher = self.runtime.matcher if self.runtime is not None else VariantMatcher(self.watches)
        return self._matcher

    def explained(self, text: str) -> list[dict[str, Any]]:
        """The matches in a text, each with why it fired, and the short forms not counted."""
        by_id = {w.id: w for w in self.watches}
        matcher = self.matcher()
        found = [
            {**m.to_json(), "why": explain(m, by_id[m.watch], None)}
            for m in matcher.match(text)
            if m.watch in by_id
        ]
        refused = [{**m.to_json(), "why": f"not counted: {why}"} for m, why in matcher.refused]
        return found + refused

    async def page_text(self, url: str) -> tuple[str, str]:
        """(title, text) of a page, fetched under the pipeline's network guard and cleaned as it would be."""
        s = self.settings
        if self.runtime is not None:
            client = self.runtime.web()
        else:
            if self._web is None:
                policy = AddressPolicy(parse_allowed(s.allow_networks))
                self._web = SafeClient(policy, HostGate(s.host_concurrency, s.host_delay), s.user_agent)
            client = self._web
        limits = Limits(s.connect_timeout, s.read_timeout, s.total_timeout, s.max_page_bytes)
        resp = await client.get(url, limits, {"Accept": "text/html,application/xhtml+xml;q=0.9"})
        loop = asyncio.get_running_loop()
        cleaned = await asyncio.wait_for(
            loop.run_in_executor(None, clean_html, decode_html(resp), resp.url), s.extract_timeout
        )
        return cleaned.title, cleaned.text

    def health(self) -> tuple[bool, str]:
        rt = self.runtime
        if rt is None:
            return True, "ok: console only"
        if rt.failed.is_set():
            return False, f"an agent died: {type(rt.failure).__name__}: {rt.failure}"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        rt = self.runtime
        alive, why = self.health()
        if not alive or rt is None:
            return alive, why
        consumes = any(s.input for s in PIPELINE if not rt.settings.agents or s.name in rt.settings.agents)
        assigned = _assignment(rt)
        if consumes and not assigned:
            return False, "no partition assigned yet (joining the group, or the broker is unreachable)"
        if time.monotonic() - metrics.last_stall < STALL_WINDOW:
            return False, "a partition stalled in the last minute"
        lags: dict[Any, int] = getattr(rt.app, "lags", {})
        worst = max(lags.values(), default=0)
        if worst > rt.settings.ready_max_lag:
            return False, f"lag {worst} records, over ready_max_lag ({rt.settings.ready_max_lag})"
        return True, f"ok: {len(assigned)} partition(s), lag {worst}"

    def pipeline(self) -> list[dict[str, Any]]:
        """Each stage, with the records it handled by outcome and its input's lag (this worker's)."""
        handled: dict[str, dict[str, float]] = {}
        for metric in REGISTRY.collect():
            if metric.name == "wirewatch_records":
                for sample in metric.samples:
                    if sample.name.endswith("_total"):
                        stage, outcome = sample.labels["stage"], sample.labels["outcome"]
                        handled.setdefault(stage, {})[outcome] = sample.value
        lags: dict[Any, int] = getattr(self.runtime.app, "lags", {}) if self.runtime else {}
        prefix = self.settings.topic_prefix
        return [
            {
                "stage": s.name,
                "input": s.input or s.reads,
                "outputs": [*s.outputs, *([s.writes] if s.writes else [])],
                "does": s.does,
                "handled": handled.get(s.name, {}),
                "lag": sum(n for tp, n in lags.items() if s.input and tp.topic == prefix + s.input),
            }
            for s in PIPELINE
        ]


async def push_items(rt: Runtime, feed_url: str, body: bytes) -> None:
    """A feed document a hub pushed: parsed and its unseen items published as a poll's would be."""
    try:
        feed = await parse_in_cpu(rt, feed_url, body)
    except Exception as exc:  # a bad push is the hub's problem: dead-lettered like a bad poll
        await rt.dead_letter("poller", feed_url, getattr(exc, "reason_class", "bad_feed"), f"pushed: {exc}")
        return
    await publish_items(rt, feed_url, feed, time.time())


def _assignment(rt: Runtime) -> set[Any]:
    try:
        return set(rt.app.consumer.assignment())
    except Exception:  # no consumer yet
        return set()


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def build_app(console: Console) -> web.Application:
    """The console's routes: pages and their data, /metrics, /healthz and /readyz."""
    token = console.settings.console_token

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # Probes and metrics stay open to the kubelet and Prometheus; the console wants the token if set.
        open_paths = request.path in ("/healthz", "/readyz", "/metrics") or request.path.startswith(
            "/websub/"
        )
        if token and not open_paths:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.cookies.get(
                "wirewatch_token", request.query.get("token", "")
            )
            if not hmac.compare_digest(given.encode(), token.encode()):
                return web.Response(status=401, text="this console needs its token (WIREWATCH_CONSOLE_TOKEN)")
        response = await handler(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if token and request.query.get("token") == token:
            response.set_cookie("wirewatch_token", token, httponly=True, samesite="Strict")
        return response

    async def index(_: web.Request) -> web.Response:
        page = resources.files("streams.console").joinpath("static", "index.html").read_text(encoding="utf-8")
        return web.Response(text=page, content_type="text/html")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        body = resources.files("streams.console").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=_STATIC[name])

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        console._listeners.add(queue)
        try:
            await response.write(b": connected\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 15.0)
                except TimeoutError:
                    event = b": keep-alive\n\n"
                await response.write(event)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            console._listeners.discard(queue)
        return response

    async def alerts(_: web.Request) -> web.Response:
        return _json(list(console.alerts))

    async def explain_alert(request: web.Request) -> web.Response:
        wanted = request.query.get("alert_id", "")
        alert = next((a for a in console.alerts if a.get("alert_id") == wanted), None)
        if alert is None:
            return _json({"error": "no recent alert with that id"}, 404)
        by_id = {w.id: w for w in console.watches}
        from streams.records import WatchMatch

        reasons = []
        for raw in alert.get("matches") or []:
            match = WatchMatch(**raw)
            watch = by_id.get(match.watch)
            why = explain(match, watch, None) if watch else "a watch this console's watchlist does not hold"
            reasons.append({"watch": match.watch, "text": match.text, "how": match.how, "why": why})
        return _json(reasons)

    async def feeds(_: web.Request) -> web.Response:
        return _json(sorted(console.feeds.values(), key=lambda h: str(h.get("feed_url"))))

    async def dead_letters(_: web.Request) -> web.Response:
        return _json(list(console.dead_letters))

    async def watchlist(_: web.Request) -> web.Response:
        return _json(
            [
                {"id": w.id, "kind": w.kind, "name": w.name, "aliases": list(w.aliases)}
                for w in console.watches
            ]
        )

    async def try_it(request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=orjson.loads)
        except Exception:
            return _json({"error": 'send JSON: {"text": ...} or {"url": ...}'}, 400)
        text, title = str(body.get("text") or ""), ""
        url = str(body.get("url") or "").strip()
        if url:
            try:
                title, text = await console.page_text(url)
            except (FetchError, ExtractionFailed, TimeoutError) as exc:
                return _json({"error": f"{type(exc).__name__}: {exc}"}, 422)
        if not text.strip():
            return _json({"error": "no text to match"}, 400)
        if len(text) > MAX_TRY_CHARS:
            return _json({"error": f"over {MAX_TRY_CHARS:,} characters"}, 413)
        return _json({"title": title, "matches": console.explained(text)})

    async def pipeline(_: web.Request) -> web.Response:
        return _json(console.pipeline())

    async def metrics_page(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def websub_intent(request: web.Request) -> web.Response:
        hub = console.runtime.websub if console.runtime else None
        if hub is None:
            raise web.HTTPNotFound()
        status, text = hub.verify_intent(request.match_info["cid"], dict(request.query))
        return web.Response(status=status, text=text)

    async def websub_push(request: web.Request) -> web.Response:
        rt = console.runtime
        if rt is None or rt.websub is None:
            raise web.HTTPNotFound()
        body = await request.content.read(rt.settings.max_feed_bytes + 1)
        if len(body) > rt.settings.max_feed_bytes:
            return web.Response(status=413, text="over max_feed_bytes")
        result, feed_url = rt.websub.delivery(
            request.match_info["cid"], request.headers.get("X-Hub-Signature"), body
        )
        metrics.WEBSUB.labels(result).inc()
        if result == "unknown" or feed_url is None:
            # A forged push is acknowledged and ignored (WebSub 7.4): a refusal would tell a guesser more.
            return web.Response(status=404 if result == "unknown" else 202)
        await push_items(rt, feed_url, body)
        return web.Response(status=202)

    async def favicon(_: web.Request) -> web.Response:
        return web.Response(status=204)  # no icon: a browser asks for one on every console tab

    async def healthz(_: web.Request) -> web.Response:
        ok, why = console.health()
        return web.Response(status=200 if ok else 503, text=why + "\n")

    async def readyz(_: web.Request) -> web.Response:
        ok, why = console.readiness()
        return web.Response(status=200 if ok else 503, text=why + "\n")

    app = web.Application(middlewares=[guard], client_max_size=MAX_TRY_CHARS * 4 + 1024)
    app.add_routes(
        [
            web.get("/", index),
            web.get("/static/{name}", static),
            web.get("/events", events),
            web.get("/api/alerts", alerts),
            web.get("/api/explain", explain_alert),
            web.get("/api/feeds", feeds),
            web.get("/api/deadletters", dead_letters),
            web.get("/api/watchlist", watchlist),
            web.post("/api/try", try_it),
            web.get("/api/pipeline", pipeline),
            web.get("/metrics", metrics_page),
            web.get("/favicon.ico", favicon),
            web.get("/websub/{cid}", websub_intent),
            web.post("/websub/{cid}", websub_push),
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
        ]
    )
    return app


@contextlib.asynccontextmanager
async def serving(console: Console, address: str) -> AsyncIterator[int | None]:
    """The console on HOST:PORT (port 0: any free one) while the block runs; yields the port, or None
    when the address cannot be bound (the pipeline goes on without its console, saying why)."""
    host, _, port = address.rpartition(":")
    runner = web.AppRunner(build_app(console), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]") or "127.0.0.1", int(port), shutdown_timeout=1.0)
    try:
        await site.start()
    except OSError as exc:
        log.warning("console: cannot listen on %s (%s); running without it", address, exc)
        await runner.cleanup()
        yield None
        return
    sockets = getattr(site._server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else int(port)
    await console.start()
    log.warning("console on http://%s:%d/", host.strip("[]") or "127.0.0.1", bound)
    try:
        yield bound
    finally:
        await console.stop()
        await runner.cleanup()
