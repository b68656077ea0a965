"""A WebSub hub on loopback (the subscriber-facing side of the W3C spec), for the tests and benchmarks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from streams.site import serve_loopback


@dataclass
class Subscriber:
    callback: str
    topic: str
    secret: str
    lease: int


class Hub:
    """Takes subscriptions, checks the subscriber's intent with a challenge, pushes content signed with its
    secret."""

    def __init__(self) -> None:
        self.url = ""
        self.subscribers: dict[tuple[str, str], Subscriber] = {}  # (topic, callback) -> verified subscriber
        self.requests: list[dict[str, str]] = []
        self.verified = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/", self._subscription)
        self._runner, base = await serve_loopback(app)
        self.url = base + "/"
        return self.url

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _subscription(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(form)
        if form.get("hub.mode") not in ("subscribe", "unsubscribe") or not form.get("hub.callback"):
            return web.Response(status=400, text="hub.mode and hub.callback are required")
        # 202, then the intent check apart from this request, as the spec has it.
        task = asyncio.create_task(self._verify(form))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=202)

    async def _verify(self, form: dict[str, str]) -> None:
        challenge = secrets.token_hex(16)
        params = {
            "hub.mode": form["hub.mode"],
            "hub.topic": form["hub.topic"],
            "hub.challenge": challenge,
            "hub.lease_seconds": form.get("hub.lease_seconds", "86400"),
        }
        async with (
            aiohttp.ClientSession() as session,
            session.get(form["hub.callback"], params=params) as resp,
        ):
            body = await resp.text()
        if resp.status != 200 or body != challenge:
            return
        key = (form["hub.topic"], form["hub.callback"])
        if form["hub.mode"] == "unsubscribe":
            self.subscribers.pop(key, None)
            return
        self.subscribers[key] = Subscriber(
            form["hub.callback"],
            form["hub.topic"],
            form.get("hub.secret", ""),
            int(params["hub.lease_seconds"]),
        )
        self.verified.set()

    async def publish(self, topic: str, body: bytes, forge: bool = False) -> list[int]:
        """Push the content to every verified subscriber of the topic; the statuses they answered."""
        statuses = []
        for sub in [s for s in self.subscribers.values() if s.topic == topic]:
            secret = "not-the-secret" if forge else sub.secret
            signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {
                "Content-Type": "application/rss+xml",
                "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"',
                "X-Hub-Signature": f"sha256={signature}",
            }
            async with (
                aiohttp.ClientSession() as session,
                session.post(sub.callback, data=body, headers=headers) as resp,
            ):
                statuses.append(resp.status)
        return statuses
