"""Guarded downloads against real HTTP servers on loopback: addresses, redirects, time, bytes, politeness."""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from streams.ingest.fetch import (
    MAX_REDIRECTS,
    FetchError,
    HostGate,
    Limits,
    Response,
    SafeClient,
    check_feed_type,
    decode_html,
)
from streams.ingest.netguard import AddressPolicy, parse_allowed
from streams.ingest.robots import Robots
from streams.site import serve_loopback

LIMITS = Limits(connect_timeout=1.0, read_timeout=0.5, total_timeout=3.0, max_bytes=10_000)
LOOPBACK_ONLY = AddressPolicy(parse_allowed(["127.0.0.1/32"]))
NOTHING_ALLOWED = AddressPolicy()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Server:
    """A loopback site that counts what it is asked for."""

    host: str = "127.0.0.1"
    port: int = 0
    hits: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, routes: dict[str, Handler]) -> None:
        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.hits.append(request.path)
            return await handler(request)

        app = web.Application(middlewares=[count])
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        self.runner, base = await serve_loopback(app, self.host, self.port)
        self.port = int(base.rsplit(":", 1)[1])

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def _html(body: bytes, **headers: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"Content-Type": "text/html", **headers})

    return handler


async def _drip(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/html"})
    await resp.prepare(request)
    for _ in range(100):
        await resp.write(b"<p>")  # a byte now and then: each read succeeds, the download never ends
        await asyncio.sleep(0.2)
    return resp


async def _stall(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/html"})
    await resp.prepare(request)
    await resp.write(b"<html>")
    await asyncio.sleep(2.0)  # the server stalls; the client's read timeout must fire first
    return resp


async def _big(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/html"})
    await resp.prepare(request)
    for _ in range(50):
        await resp.write(b"x" * 1000)
    return resp


def _gzip_bomb() -> bytes:
    """About 1 MB of gzip that expands to 1 GiB of zeros, built in well under a second.

    After a full flush the compressor starts afresh, so every further 1 MiB block compresses to the same
    bytes and can be repeated instead of compressed again.
    """
    block = b"\0" * (1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    middle = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    last = comp.compress(block) + comp.flush()
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(block, crc)
    body = first + middle * 1022 + last
    return body[:-8] + struct.pack("<II", crc, (1 << 30) & 0xFFFFFFFF)


BOMB = _gzip_bomb()


def _redirect_to(target: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(target)

    return handler


async def _chain(request: web.Request) -> web.StreamResponse:
    left = int(request.match_info.get("n", "0"))
    if left == 0:
        return web.Response(
            text="<html><body><p>end of the chain</p></body></html>", content_type="text/html"
        )
    raise web.HTTPFound(f"/chain/{left - 1}")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    await srv.start(
        {
            "/page": _html(
                "<html><head><meta charset='windows-1256'></head><body><p>ok</p></body></html>".encode(
                    "cp1256"
                ),
                ETag='"v1"',
            ),
            "/drip": _drip,
            "/stall": _stall,
            "/big": _big,
            "/declared": _html(b"x" * 20_000),
            "/bomb": _html(BOMB, **{"Content-Encoding": "gzip"}),
            "/gzipped": _html(
                zlib.compress(b"<html><p>squeezed</p></html>", wbits=16 + 15), **{"Content-Encoding": "gzip"}
            ),
            "/raw-deflate": _html(
                zlib.compress(b"<html><p>raw</p></html>", wbits=-15), **{"Content-Encoding": "deflate"}
            ),
            "/corrupt": _html(b"\x1f\x8b\x08\x00garbage", **{"Content-Encoding": "gzip"}),
            "/loop": _redirect_to("/loop"),
            "/chain/{n}": _chain,
            "/to-metadata": _redirect_to("http://169.254.169.254/latest/meta-data/"),
            "/to-intranet": _redirect_to("http://intranet.corp.example/admin"),
            "/to-ftp": _redirect_to("ftp://files.example/x"),
            "/pdf": _html(b"%PDF-1.7", **{"Content-Type": "application/pdf"}),
            "/png": _html(b"\x89PNG\r\n", **{"Content-Type": "image/png"}),
        }
    )
    yield srv
    await srv.stop()


async def fake_dns(answers: dict[str, list[str]], host: str, port: int) -> list[str]:
    if host not in answers:
        raise OSError(f"no such host {host}")
    return answers[host]


def _client(policy: AddressPolicy = LOOPBACK_ONLY, **dns: list[str]) -> SafeClient:
    names = {k.replace("_", "."): v for k, v in dns.items()}

    async def lookup(host: str, port: int) -> list[str]:
        return await fake_dns(names, host, port)

    return SafeClient(policy, HostGate(concurrency=4, delay=0.0), "wirewatch-test/1", lookup)


async def _refusal(client: SafeClient, url: str, limits: Limits = LIMITS) -> FetchError:
    try:
        with pytest.raises(FetchError) as info:
            await client.get(url, limits)
    finally:
        await client.close()
    return info.value


BLOCKED_FORMS = [
    "127.0.0.2",  # loopback beyond the one allowed address
    "10.1.2.3",
    "172.16.0.9",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "224.0.0.1",
    "0.0.0.0",
    "240.0.0.1",
    "[::1]",
    "[::ffff:127.0.0.2]",
    "[::ffff:a9fe:a9fe]",
    "[::ffff:10.0.0.1]",
    "[fe80::1]",
    "[fc00::1]",
    "[::]",
    "[ff02::1]",
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[2002:a00:1::]",  # 6to4 of 10.0.0.1
    "0x7f000002",
    "2130706434",
    "0177.0.0.2",
    "127.2",
    "0xa9.0xfe.0xa9.0xfe",
]


@pytest.mark.parametrize("host", BLOCKED_FORMS)
async def test_every_form_of_a_blocked_address_is_refused(server: Server, host: str) -> None:
    error = await _refusal(_client(), f"http://{host}:{server.port}/page")
    assert error.reason_class == "blocked_address", error
    assert server.hits == []


async def test_without_an_allowlist_even_loopback_is_refused(server: Server) -> None:
    error = await _refusal(_client(NOTHING_ALLOWED), server.base + "/page")
    assert error.reason_class == "blocked_address"
    assert "loopback" in str(error)
    assert server.hits == []


async def test_a_name_is_checked_after_resolution(server: Server) -> None:
    client = _client(NOTHING_ALLOWED, intranet_corp_example=["10.20.30.40"])
    error = await _refusal(client, "http://intranet.corp.example/admin")
    assert error.reason_class == "blocked_address"
    assert "10.20.30.40 is private" in str(error)


async def test_a_name_with_any_blocked_address_is_refused(server: Server) -> None:
    client = _client(LOOPBACK_ONLY, mixed_example=["127.0.0.1", "10.0.0.7"])
    error = await _refusal(client, f"http://mixed.example:{server.port}/page")
    assert error.reason_class == "blocked_address"
    assert server.hits == []


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/to-metadata", "blocked_address"), ("/to-intranet", "blocked_address"), ("/to-ftp", "bad_url")],
)
async def test_every_redirect_hop_is_checked(server: Server, path: str, reason: str) -> None:
    client = _client(LOOPBACK_ONLY, intranet_corp_example=["192.168.7.7"])
    error = await _refusal(client, server.base + path)
    assert error.reason_class == reason
    assert server.hits == [path]


async def test_dns_rebinding_gets_nowhere() -> None:
    """The resolver answers a permitted address first and an internal one after: wirewatch asks once per
    connection and connects to the address it checked, so the internal server never hears from it."""
    public = Server(host="127.0.0.3")  # stands in for a public address: allowed below
    await public.start({"/page": _html(b"<html><p>public</p></html>")})
    internal = Server(host="127.0.0.1", port=public.port)
    await internal.start({"/page": _html(b"<html><p>internal</p></html>")})
    answers = iter([["127.0.0.3"], ["127.0.0.1"]])
    asked: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    policy = AddressPolicy(parse_allowed(["127.0.0.3/32"]))
    url = f"http://news.rebind.example:{public.port}/page"
    try:
        first = SafeClient(policy, HostGate(delay=0.0), "t", rebinding)
        resp = await first.get(url, LIMITS)
        await first.close()
        assert b"public" in resp.body and asked == ["news.rebind.example"]
        second = SafeClient(policy, HostGate(delay=0.0), "t", rebinding)
        error = await _refusal(second, url)
        assert error.reason_class == "blocked_address"
        assert len(asked) == 2
        assert internal.hits == [] and public.hits == ["/page"]
    finally:
        await public.stop()
        await internal.stop()


async def test_five_redirects_are_followed_and_a_sixth_is_not(server: Server) -> None:
    client = _client()
    resp = await client.get(server.base + f"/chain/{MAX_REDIRECTS}", LIMITS)
    assert b"end of the chain" in resp.body and resp.url.endswith("/chain/0")
    error = await _refusal(client, server.base + f"/chain/{MAX_REDIRECTS + 1}")
    assert error.reason_class == "too_many_redirects"
    assert (await _refusal(_client(), server.base + "/loop")).reason_class == "too_many_redirects"


async def test_a_slow_drip_times_out_on_the_total_deadline(server: Server) -> None:
    limits = Limits(connect_timeout=1.0, read_timeout=1.0, total_timeout=1.5, max_bytes=1_000_000)
    started = time.monotonic()
    error = await _refusal(_client(), server.base + "/drip", limits)
    assert error.reason_class == "timeout"
    assert time.monotonic() - started < 3.0  # the deadline, not the 20 s the server would take


async def test_a_stalled_read_times_out(server: Server) -> None:
    assert (await _refusal(_client(), server.base + "/stall")).reason_class == "timeout"


@pytest.mark.parametrize("path", ["/big", "/declared"])
async def test_bytes_on_the_wire_are_capped(server: Server, path: str) -> None:
    assert (await _refusal(_client(), server.base + path)).reason_class == "too_large"


async def test_a_gzip_bomb_is_cut_off_at_the_decoded_cap(server: Server) -> None:
    limits = Limits(connect_timeout=1.0, read_timeout=2.0, total_timeout=10.0, max_bytes=2_000_000)
    assert len(BOMB) < limits.max_bytes  # small on the wire: only the decoded cap can stop it
    started = time.monotonic()
    error = await _refusal(_client(), server.base + "/bomb", limits)
    assert error.reason_class == "too_large"
    assert "decompresses" in str(error)
    assert time.monotonic() - started < 5.0


async def test_compressed_bodies_are_decoded(server: Server) -> None:
    client = _client()
    try:
        assert b"squeezed" in (await client.get(server.base + "/gzipped", LIMITS)).body
        assert b"raw" in (await client.get(server.base + "/raw-deflate", LIMITS)).body
    finally:
        await client.close()
    assert (await _refusal(_client(), server.base + "/corrupt")).reason_class == "fetch_failed"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.test/x", "javascript:alert(1)", "http://"]
)
async def test_only_http_and_https(url: str) -> None:
    assert (await _refusal(_client(), url)).reason_class == "bad_url"


async def test_missing_page_is_an_http_error(server: Server) -> None:
    error = await _refusal(_client(), server.base + "/missing")
    assert error.reason_class == "http_error" and error.status == 404


async def test_page_is_decoded_with_its_charset(server: Server) -> None:
    client = _client()
    try:
        resp = await client.get(server.base + "/page", LIMITS)
    finally:
        await client.close()
    assert resp.etag == '"v1"'
    assert "<p>ok</p>" in decode_html(resp)


async def test_content_types(server: Server) -> None:
    client = _client()
    try:
        pdf = await client.get(server.base + "/pdf", LIMITS)
        png = await client.get(server.base + "/png", LIMITS)
    finally:
        await client.close()
    with pytest.raises(FetchError) as info:
        decode_html(pdf)
    assert info.value.reason_class == "not_html"
    with pytest.raises(FetchError) as info:
        check_feed_type(png)
    assert info.value.reason_class == "not_feed"


def test_sniffs_html_without_content_type() -> None:
    resp = Response("u", 200, "", None, b"<!doctype html><html><body>x</body></html>", None, None)
    assert "body" in decode_html(resp)
    with pytest.raises(FetchError):
        decode_html(Response("u", 200, "", None, b"\x89PNG\r\n", None, None))


async def test_per_host_concurrency_and_spacing() -> None:
    in_flight = peak = 0
    starts: list[float] = []

    async def slow(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, peak
        starts.append(time.monotonic())
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.3)  # the server's own slowness, so requests overlap if allowed to
        in_flight -= 1
        return web.Response(text="<html><p>x</p></html>", content_type="text/html")

    srv = Server()
    await srv.start({"/p/{n}": slow})
    client = SafeClient(LOOPBACK_ONLY, HostGate(concurrency=2, delay=0.1), "t")
    try:
        await asyncio.gather(*(client.get(f"{srv.base}/p/{i}", LIMITS) for i in range(6)))
    finally:
        await client.close()
        await srv.stop()
    assert peak == 2
    # Starts are stamped by the server, so a new connection's set-up can shave a little off one gap; the
    # gate's spacing shows in every gap and in the whole span (five gaps of 0.1 s).
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.07 and starts[-1] - starts[0] >= 0.45


async def test_retry_after_keeps_the_client_off_the_host() -> None:
    answered: list[float] = []

    async def busy(request: web.Request) -> web.StreamResponse:
        answered.append(time.monotonic())
        if len(answered) == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(text="<html><p>x</p></html>", content_type="text/html")

    srv = Server()
    await srv.start({"/p": busy})
    client = SafeClient(LOOPBACK_ONLY, HostGate(concurrency=2, delay=0.0), "t")
    try:
        with pytest.raises(FetchError) as info:
            await client.get(srv.base + "/p", LIMITS)
        assert info.value.reason_class == "rate_limited" and info.value.retry_after == 1.0
        await client.get(srv.base + "/p", LIMITS)
    finally:
        await client.close()
        await srv.stop()
    assert answered[1] - answered[0] >= 0.95


async def test_a_long_retry_after_fails_fast_instead_of_holding_a_slot() -> None:
    gate = HostGate(concurrency=1, delay=0.0, max_wait=5.0)
    gate.hold("slow.example", 3600)
    with pytest.raises(FetchError) as info:
        async with gate.slot("slow.example"):
            pass
    assert info.value.reason_class == "rate_limited"


async def _robots_site(body: str | None, status: int = 200) -> Server:
    async def robots(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=body or "", content_type="text/plain")

    srv = Server()
    await srv.start({"/robots.txt": robots, "/{tail:.*}": _html(b"<html><p>x</p></html>")})
    return srv


@asynccontextmanager
async def _robots_of(srv: Server) -> AsyncIterator[Robots]:
    client = SafeClient(LOOPBACK_ONLY, HostGate(delay=0.0), "wirewatch/0.1")
    try:
        yield Robots(client, "wirewatch", LIMITS)
    finally:
        await client.close()
        await srv.stop()


async def test_robots_txt_rules_are_followed_and_cached() -> None:
    srv = await _robots_site(
        "User-agent: *\nDisallow: /private/\n\nUser-agent: wirewatch\nDisallow: /no-bots/\n"
    )
    async with _robots_of(srv) as robots:
        await robots.check(srv.base + "/news/1")
        await robots.check(srv.base + "/private/1")  # the group for wirewatch replaces the * group
        with pytest.raises(FetchError) as info:
            await robots.check(srv.base + "/no-bots/2")
        assert info.value.reason_class == "robots_disallowed"
    assert srv.hits.count("/robots.txt") == 1


@pytest.mark.parametrize(("status", "allowed"), [(404, True), (403, True), (500, False), (503, False)])
async def test_robots_txt_that_cannot_be_had(status: int, allowed: bool) -> None:
    srv = await _robots_site("", status)
    async with _robots_of(srv) as robots:
        if allowed:
            await robots.check(srv.base + "/news/1")
        else:
            with pytest.raises(FetchError) as info:
                await robots.check(srv.base + "/news/1")
            assert info.value.reason_class == "robots_disallowed"
