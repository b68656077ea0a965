"""Routes and destinations end to end: `wirewatch run --once --config` delivers to Slack, email, a webhook."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from streams.alerting.render import SIGNATURE_HEADER, verify_signature
from streams.kafka.broker import free_port
from streams.site import SiteServer, demo_watchlist_path
from tests.factories import loopback_http
from tests.integration.test_cli import spawn, wirewatch

pytestmark = pytest.mark.integration


class Receiver:
    """Slack's incoming webhook and a partner's webhook on loopback; the partner fails three times first."""

    def __init__(self) -> None:
        self.slack: list[dict[str, object]] = []
        self.hook: list[tuple[bytes, str]] = []
        self.hook_failures = 3
        self.hook_attempts = 0
        self.url = ""

    async def on_slack(self, request: web.Request) -> web.Response:
        self.slack.append(orjson.loads(await request.read()))
        return web.Response(text="ok")

    async def on_hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.hook_attempts += 1
        if self.hook_failures:
            self.hook_failures -= 1
            return web.Response(status=500, text="try later")
        self.hook.append((body, request.headers[SIGNATURE_HEADER]))
        return web.Response(status=204)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(envelope.content)  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with loopback_http({"/services/T1/B1/secret": rec.on_slack, "/hook": rec.on_hook}) as base:
        rec.url = base
        yield rec


async def test_run_once_delivers_each_alert_once_to_each_destination(
    demo_site: SiteServer, receiver: Receiver, tmp_path: Path
) -> None:
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    config = tmp_path / "wirewatch.yaml"
    config.write_text(
        f"""
feeds: feeds.txt
watchlist: {demo_watchlist_path()}
settings:
  retry_first_delay: 0.2
destinations:
  desk-slack: {{type: slack, webhook_url: "${{SLACK_WEBHOOK_URL}}"}}
  desk-email: {{type: email, host: 127.0.0.1, port: {smtp_port}, sender: ww@example.org, to: [desk@example.org]}}
  partner: {{type: webhook, url: "{receiver.url}/hook", secret: "${{PARTNER_SECRET}}"}}
routes:
  - name: haftar
    watches: [khalifa-haftar]
    to: [desk-slack]
  - name: everything
    to: [desk-email, partner, desk-slack]
"""
    )
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(demo_site.feed_url + "\n")
    env = {
        **os.environ,
        "SLACK_WEBHOOK_URL": receiver.url + "/services/T1/B1/secret",
        "PARTNER_SECRET": "partner-key",
    }
    try:
        code, out, err = await wirewatch(
            "run",
            "--once",
            "--format",
            "jsonl",
            "--config",  # it names the feeds and the watchlist too
            str(config),
            "--data-dir",
            str(tmp_path / "data"),
            env=env,
        )
    finally:
        controller.stop()
    assert code == 0, err
    alert_ids = {orjson.loads(line)["alert_id"] for line in out.splitlines()}
    assert len(alert_ids) == 3
    assert "secret" not in err and "partner-key" not in err  # credentials never reach the log
    # Slack: one message per alert, though two routes name it for the Haftar alerts.
    assert len(receiver.slack) == 3
    # The webhook answered 500 three times and then 200: each alert arrives once, signed.
    assert sorted(orjson.loads(body)["alert_id"] for body, _ in receiver.hook) == sorted(alert_ids)
    assert all(verify_signature(body, sig, b"partner-key") for body, sig in receiver.hook)
    mails = [message_from_bytes(raw, policy=default) for raw in inbox.messages]
    assert sorted(str(m["X-Wirewatch-Alert-Id"]) for m in mails) == sorted(alert_ids)
    assert "9 delivered" in err, err  # three alerts, three destinations each


async def test_a_delivery_pending_when_run_is_killed_arrives_after_the_restart(
    demo_site: SiteServer, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.hook_failures = 10**6  # down until further notice
    config = tmp_path / "wirewatch.yaml"
    config.write_text(
        f"""
settings:
  retry_first_delay: 0.2
  retry_max_delay: 0.5
destinations:
  partner: {{type: webhook, url: "{receiver.url}/hook", secret: "${{PARTNER_SECRET}}"}}
routes:
  - to: [partner]
"""
    )
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(demo_site.feed_url + "\n")
    args = ["--config", str(config), "--feeds", str(feeds), "--watchlist", str(demo_watchlist_path())]
    args += ["--data-dir", str(tmp_path / "data")]
    env = {**os.environ, "PARTNER_SECRET": "k"}
    proc = await spawn("run", *args, env=env)
    try:
        async with asyncio.timeout(120):
            while receiver.hook_attempts < 3:  # the destination is being retried: deliveries are pending
                await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert receiver.hook == []
    receiver.hook_failures = 0  # back up
    code, _, err = await wirewatch("run", "--once", *args, env=env)
    assert code == 0, err
    assert "re-queued 3 delivery(ies)" in err
    assert len(receiver.hook) == 3
    assert len({orjson.loads(body)["alert_id"] for body, _ in receiver.hook}) == 3


async def test_a_later_alert_of_a_story_is_a_slack_thread_reply(tmp_path: Path) -> None:
    from dataclasses import replace

    from streams.site import Page, Site
    from tests.unit.test_senders import FakeSlack
    from tests.unit.test_stories import COPIES

    fake = FakeSlack()
    async with loopback_http({"/{tail:.*}": fake.handle}) as base:
        api = base + "/api/"
        first = Page(
            "haftar-pulls-back", "Haftar's forces pull back", "2020-06-04T10:00:00Z", "", tuple(COPIES[0])
        )
        site = SiteServer(Site("Wire Mirror", "Most read", [], [first]))
        await site.start()
        config = tmp_path / "wirewatch.yaml"
        config.write_text(
            "destinations:\n"
            f'  ops: {{type: slack, token: "${{SLACK_BOT_TOKEN}}", channel: "#libya", api_url: "{api}"}}\n'
            "routes:\n  - to: [ops]\n"
        )
        feeds = tmp_path / "feeds.txt"
        feeds.write_text(site.feed_url + "\n")
        args = ["run", "--once", "--config", str(config), "--feeds", str(feeds)]
        args += ["--watchlist", str(demo_watchlist_path()), "--data-dir", str(tmp_path / "data")]
        env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test"}
        try:
            code, _, err = await wirewatch(*args, env=env)
            assert code == 0, err
            # The next day another outlet runs the story with a paragraph on Sirte: a new watch for it.
            later = (*COPIES[1], "Fighting was also reported on the outskirts of Sirte, residents said.")
            site.site.pages.append(replace(first, slug="haftar-pulls-back-update", body=later))
            code, _, err = await wirewatch(*args, env=env)
            assert code == 0, err
        finally:
            await site.stop()
        (_, _, one), (_, _, two) = fake.posts
        assert "thread_ts" not in one or not one["thread_ts"]
        assert two["thread_ts"] == "1.000"  # the first message's ts, as the fake Slack answered it
        assert two["channel"] == "#libya"
