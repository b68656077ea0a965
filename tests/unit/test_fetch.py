"""Bounded downloads against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from streams.stages.fetch import FetchError, Limits, Response, decode_html, fetch

LIMITS = Limits(connect_timeout=2.0, read_timeout=0.5, total_timeout=3.0, max_bytes=10_000)


async def _slow(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/html"})
    await resp.prepare(request)
    await resp.write(b"<html>")
    await asyncio.sleep(2.0)  # the server stalls; the client's read timeout must fire first
    await resp.write(b"</html>")
    return resp


async def _big(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/html"})
    await resp.prepare(request)
    for _ in range(50):
        await resp.write(b"x" * 1000)
    return resp


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def _page(request: web.Request) -> web.Response:
    return web.Response(
        body="<html><head><meta charset='windows-1256'></head><body><p>ok</p></body></html>".encode("cp1256"),
        headers={"Content-Type": "text/html", "ETag": '"v1"'},
    )


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/slow", _slow)
    app.router.add_get("/big", _big)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/page", _page)
    app.router.add_get("/pdf", lambda r: web.Response(body=b"%PDF", content_type="application/pdf"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/slow", "timeout"),
        ("/big", "too_large"),
        ("/loop", "too_many_redirects"),
        ("/missing", "http_error"),
    ],
)
async def test_refusals_have_a_reason_class(server: str, path: str, reason: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FetchError) as info:
            await fetch(session, server + path, LIMITS)
    assert info.value.reason_class == reason


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.test/x", "javascript:alert(1)"])
async def test_only_http_and_https(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FetchError) as info:
            await fetch(session, url, LIMITS)
    assert info.value.reason_class == "bad_url"


async def test_page_is_decoded_with_its_charset(server: str) -> None:
    async with aiohttp.ClientSession() as session:
        resp = await fetch(session, server + "/page", LIMITS)
    assert resp.etag == '"v1"'
    assert "<p>ok</p>" in decode_html(resp)


async def test_not_html(server: str) -> None:
    async with aiohttp.ClientSession() as session:
        resp = await fetch(session, server + "/pdf", LIMITS)
    with pytest.raises(FetchError) as info:
        decode_html(resp)
    assert info.value.reason_class == "not_html"


def test_sniffs_html_without_content_type() -> None:
    resp = Response("u", 200, "", None, b"<!doctype html><html><body>x</body></html>", None, None)
    assert "body" in decode_html(resp)
    with pytest.raises(FetchError):
        decode_html(Response("u", 200, "", None, b"\x89PNG\r\n", None, None))
