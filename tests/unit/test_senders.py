"""The real Slack, SMTP and webhook clients against servers on loopback (aiosmtpd, aiohttp)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.policy import default
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from streams.alerting.deliver import DeliveryError
from streams.alerting.render import SIGNATURE_HEADER, verify_signature
from streams.alerting.routes import Destination, Secret
from streams.alerting.senders import Pacer, email_for, send_email, send_slack, send_webhook
from streams.kafka.broker import free_port
from tests.factories import loopback_http, make_alert

ALERT = make_alert(
    title="Haftar's forces regroup <!channel>",
    snippet="Forces loyal to Haftar regrouped.",
    url="https://news.example/haftar",
    surface="Haftar",
    how="exact",
)


class FakeSlack:
    """Slack's webhook and chat.postMessage endpoints on loopback, answering from a script."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, str, dict[str, Any]]] = []
        self.script: list[web.Response] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        data = orjson.loads(body) if body.startswith(b"{") else dict((await request.post()).items())
        self.posts.append((time.monotonic(), request.path, data))
        if self.script:
            return self.script.pop(0)
        if request.path.endswith("chat.postMessage"):
            return web.json_response({"ok": True, "ts": f"{len(self.posts)}.000"})
        return web.Response(text="ok")


@pytest.fixture
async def slack() -> AsyncIterator[tuple[FakeSlack, str]]:
    fake = FakeSlack()
    async with loopback_http({"/{tail:.*}": fake.handle}) as base:
        yield fake, base


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


async def test_slack_webhook_gets_the_escaped_block_kit_message(slack: tuple[FakeSlack, str]) -> None:
    fake, base = slack
    dest = Destination(
        "desk", "slack", {"webhook_url": Secret(base + "/services/T1/B1/x", "SLACK_WEBHOOK_URL")}
    )
    async with aiohttp.ClientSession() as session:
        await send_slack(dest, ALERT, session)
    ((_, path, body),) = fake.posts
    assert path == "/services/T1/B1/x"
    assert "<!channel>" not in orjson.dumps(body).decode() and body["blocks"]


async def test_slack_bot_token_posts_to_the_channel_and_threads(slack: tuple[FakeSlack, str]) -> None:
    fake, base = slack
    dest = Destination("ops", "slack", {"token": Secret("xoxb-test", "SLACK_BOT_TOKEN"), "channel": "#libya"})
    async with aiohttp.ClientSession() as session:
        ts = await send_slack(dest, ALERT, session, api_url=base + "/api/")
        await send_slack(dest, ALERT, session, api_url=base + "/api/", thread_ts=ts)
    first, second = (data for _, _, data in fake.posts)
    assert first["channel"] == "#libya" and ts == "1.000"
    assert second["thread_ts"] == "1.000"


async def test_slack_429_is_a_retryable_error_with_its_retry_after(slack: tuple[FakeSlack, str]) -> None:
    fake, base = slack
    fake.script.append(web.Response(status=429, headers={"Retry-After": "2"}, text="rate_limited"))
    dest = Destination(
        "desk", "slack", {"webhook_url": Secret(base + "/services/T/B/y", "SLACK_WEBHOOK_URL")}
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises(DeliveryError) as info:
            await send_slack(dest, ALERT, session)
    assert info.value.retry and info.value.retry_after == 2.0


async def test_pacer_spaces_fifty_posts_a_second_apart_in_order() -> None:
    pacer = Pacer(0.02)  # Slack's 1 s, scaled down: the order and the spacing are what is checked
    stamps: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        await pacer.wait()
        stamps.append((i, time.monotonic()))

    await asyncio.gather(*(one(i) for i in range(50)))
    assert [i for i, _ in stamps] == list(range(50))
    assert all(b - a >= 0.019 for (_, a), (_, b) in itertools.pairwise(stamps))


async def test_email_reaches_a_real_smtp_server_as_multipart(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    dest = Destination(
        "desk",
        "email",
        {"host": "127.0.0.1", "port": port, "sender": "ww@example.org", "to": ["desk@example.org"]},
    )
    await send_email(dest, [email_for(dest, ALERT)])
    ((rcpts, raw),) = inbox.messages
    assert rcpts == ["desk@example.org"]
    parsed = message_from_bytes(raw, policy=default)
    assert parsed.is_multipart() and "khalifa-haftar" in str(parsed["Subject"])
    assert parsed["X-Wirewatch-Alert-Id"] == "a1"


async def test_email_to_a_closed_port_is_retryable() -> None:
    dest = Destination("desk", "email", {"host": "127.0.0.1", "port": 9, "sender": "a@b.c", "to": ["d@e.f"]})
    with pytest.raises(DeliveryError) as info:
        await send_email(dest, [email_for(dest, ALERT)])
    assert info.value.retry and info.value.reason_class == "unreachable"


async def test_webhook_posts_the_signed_alert() -> None:
    received: list[tuple[bytes, str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers[SIGNATURE_HEADER]))
        return web.Response(status=204)

    async with loopback_http({"/hook": hook}) as base, aiohttp.ClientSession() as session:
        dest = Destination(
            "partner", "webhook", {"url": base + "/hook", "secret": Secret("k3y", "HOOK_SECRET")}
        )
        await send_webhook(dest, ALERT, session)
    ((body, signature),) = received
    assert orjson.loads(body)["alert_id"] == "a1"
    assert verify_signature(body, signature, b"k3y")


async def test_apprise_sends_markdown_that_article_text_cannot_steer() -> None:
    """Through Apprise's own json:// service to a loopback server: credentials from the environment,
    the headline's Markdown escaped and its mentions inert, a digest as one message, a refusal retried."""
    from streams.alerting.routes import parse_routing
    from streams.alerting.senders import deliver_once

    received: list[dict[str, Any]] = []
    refuse = [False]

    async def hook(request: web.Request) -> web.Response:
        received.append(orjson.loads(await request.read()))
        return web.Response(status=503 if refuse[0] else 200)

    hostile = make_alert(
        title="@here **Haftar** [click](javascript:alert(1))", snippet="@channel <b>Sirte</b> _x_"
    )
    async with loopback_http({"/hook": hook}) as base, aiohttp.ClientSession() as session:
        host = base.removeprefix("http://")
        doc = {
            "destinations": {"desk": {"type": "apprise", "urls": ["json://${DESK_HOST}/hook"]}},
            "routes": [{"to": "desk"}],
        }
        routing = parse_routing(doc, {"DESK_HOST": host}, set())
        dest = routing.destinations["desk"]
        assert host not in repr(dest.options)  # the URL is a secret: no repr shows it
        await deliver_once(dest, [hostile], session, Pacer(0.0))
        await deliver_once(dest, [ALERT, hostile], session, Pacer(0.0), digest=True)
        refuse[0] = True
        with pytest.raises(DeliveryError) as failed:
            await deliver_once(dest, [ALERT], session, Pacer(0.0))
    assert failed.value.retry and host not in str(failed.value)
    first, digest = received[0], received[1]
    assert first["title"].startswith("khalifa-haftar: @\u2060here **Haftar**")  # plain text, mention inert
    body = first["message"]
    assert "@\u2060channel" in body and "@channel" not in body
    assert "\\*\\*Haftar\\*\\*" not in body  # the title is not in the body; the snippet's Markdown is escaped
    assert "\\_x\\_" in body and "\\<b\\>Sirte\\<" in body
    assert digest["title"] == "wirewatch digest: 2 alert(s) held back by the throttle"
    assert digest["message"].count("\n- ") + digest["message"].startswith("- ") == 2
    assert "\\[click\\]\\(javascript:alert\\(1\\)\\)" in digest["message"]


@pytest.mark.parametrize(
    ("scheme", "path", "field"), [("ntfy", "/desk", "message"), ("mmost", "/tok3n", "text")]
)
async def test_apprise_reaches_ntfy_and_mattermost_on_loopback(scheme: str, path: str, field: str) -> None:
    from streams.alerting.senders import deliver_once

    received: list[tuple[str, dict[str, Any]]] = []

    async def service(request: web.Request) -> web.Response:
        received.append((request.path, orjson.loads(await request.read())))
        return web.json_response({"id": "m1"})

    hostile = make_alert(snippet="@channel **Sirte** falls, officials say")
    app = web.Application()
    app.router.add_post("/{tail:.*}", service)
    from streams.site import serve_loopback

    runner, base = await serve_loopback(app)
    try:
        dest = Destination(
            "desk", "apprise", {"urls": [Secret(f"{scheme}://{base.removeprefix('http://')}{path}", "X")]}
        )
        async with aiohttp.ClientSession() as session:
            await deliver_once(dest, [hostile], session, Pacer(0.0))
    finally:
        await runner.cleanup()
    ((_, payload),) = received
    assert "@\u2060channel \\*\\*Sirte\\*\\* falls" in payload[field]
