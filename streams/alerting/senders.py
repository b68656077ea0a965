"""The clients that hand a rendered alert to Slack, an SMTP server or a webhook, one attempt each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

import aiohttp
import aiosmtplib
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from streams.alerting.deliver import DeliveryError, RetryPolicy, http_failure, post
from streams.alerting.render import (
    apprise_message,
    email_digest,
    email_message,
    slack_digest,
    slack_message,
    webhook_request,
)
from streams.alerting.routes import Destination, Secret
from streams.records import Alert
from streams.settings import Settings

SLACK_API = "https://slack.com/api/"


def delivery_policy(settings: Settings) -> RetryPolicy:
    """How deliveries are retried, from the retry_* and delivery_deadline settings."""
    s = settings
    return RetryPolicy(
        first_delay=s.retry_first_delay, max_delay=s.retry_max_delay, deadline=s.delivery_deadline
    )


class Pacer:
    """At most one call per `interval` seconds, in the order the callers arrived (Slack: 1 per second)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = asyncio.Lock()
        self._last = float("-inf")

    async def wait(self) -> None:
        async with self._lock:
            delay = self._last + self.interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last = time.monotonic()


def _secret(dest: Destination, key: str) -> str:
    value = dest.options[key]
    return value.reveal() if isinstance(value, Secret) else str(value)


async def send_slack(
    dest: Destination,
    alert: Alert | Sequence[Alert],
    session: aiohttp.ClientSession,
    *,
    api_url: str | None = None,
    thread_ts: str | None = None,
) -> str | None:
    """Post to an incoming webhook, or with a bot token to a channel; returns the message ts (bot only)."""
    body = slack_message(alert) if isinstance(alert, Alert) else slack_digest(alert)
    try:
        if "webhook_url" in dest.options:
            hook = AsyncWebhookClient(_secret(dest, "webhook_url"), session=session, retry_handlers=[])
            resp = await hook.send_dict(body)
            if resp.status_code != 200:
                raise http_failure(
                    resp.status_code,
                    resp.headers.get("Retry-After"),
                    f"slack webhook {dest.name}: HTTP {resp.status_code}",
                )
            return None
        client = AsyncWebClient(
            token=_secret(dest, "token"),
            session=session,
            retry_handlers=[],
            base_url=api_url or str(dest.options.get("api_url") or SLACK_API),
        )
        result = await client.chat_postMessage(
            channel=str(dest.options["channel"]), thread_ts=thread_ts, **body
        )
        ts = result.get("ts")
        return str(ts) if ts else None
    except SlackApiError as exc:
        resp = exc.response
        raise http_failure(
            resp.status_code, resp.headers.get("Retry-After"), f"slack {dest.name}: HTTP {resp.status_code}"
        ) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError("unreachable", f"slack {dest.name}: {type(exc).__name__}", retry=True) from exc


async def send_email(dest: Destination, messages: Sequence[EmailMessage]) -> None:
    """Send over one SMTP connection, with STARTTLS and login when configured."""
    o = dest.options
    try:
        smtp = aiosmtplib.SMTP(
            hostname=str(o["host"]),
            port=int(o.get("port", 25)),
            start_tls=bool(o.get("starttls", False)),
            timeout=30,
        )
        async with smtp:
            if "username" in o:
                await smtp.login(str(o["username"]), _secret(dest, "password"))
            for msg in messages:
                await smtp.send_message(msg)
    except aiosmtplib.SMTPResponseException as exc:
        # 4xx is the server asking to come back later; 5xx is a refusal that retrying will not change.
        raise DeliveryError(
            "smtp_error", f"email {dest.name}: {exc.code} {exc.message}", retry=400 <= exc.code < 500
        ) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise DeliveryError("unreachable", f"email {dest.name}: {type(exc).__name__}", retry=True) from exc


def email_for(dest: Destination, alert: Alert) -> EmailMessage:
    return email_message(alert, str(dest.options["sender"]), list(dest.options["to"]))


async def send_webhook(dest: Destination, alert: Alert, session: aiohttp.ClientSession) -> None:
    body, headers = webhook_request(alert, _secret(dest, "secret").encode())
    await post(session, str(dest.options["url"]), body, headers, float(dest.options.get("timeout", 10.0)))


async def deliver_once(
    dest: Destination,
    alerts: Sequence[Alert],
    session: aiohttp.ClientSession,
    pacer: Pacer,
    thread: str | None = None,
    digest: bool = False,
) -> list[str]:
    """One attempt at handing the alerts to a destination; returns what the destination called them
    (Slack message ts, with a bot token). DeliveryError says whether to try again."""
    refs: list[str] = []
    if digest and dest.type in ("slack", "email"):
        # A digest is one message however many alerts it gathers; webhooks get each alert, as always.
        if dest.type == "slack":
            await pacer.wait()
            ts = await send_slack(dest, list(alerts), session)
            return [ts] if ts else []
        o = dest.options
        await send_email(dest, [email_digest(alerts, str(o["sender"]), list(o["to"]))])
        return refs
    if dest.type == "apprise":
        # A digest is one message; otherwise each alert is one.
        for batch in [list(alerts)] if digest else [[a] for a in alerts]:
            await pacer.wait()
            await send_apprise(dest, batch)
        return refs
    if dest.type == "slack":
        for alert in alerts:
            await pacer.wait()
            ts = await send_slack(dest, alert, session, thread_ts=thread)
            refs.extend([ts] if ts else [])
    elif dest.type == "email":
        await send_email(dest, [email_for(dest, alert) for alert in alerts])
    else:
        for alert in alerts:
            await send_webhook(dest, alert, session)
    return refs


_APPRISE: dict[tuple[str, ...], Any] = {}


async def send_apprise(dest: Destination, alerts: list[Alert]) -> None:
    """One message through Apprise to every URL of the destination. Apprise passes no status or
    Retry-After back, only whether each service took it: any failure is retried with wirewatch's backoff
    until the delivery deadline. The URLs carry credentials: no message here names them."""
    import apprise

    # One Apprise object per destination and its URLs (a reloaded config may change them).
    key = (dest.name, *(url.reveal() for url in dest.options["urls"]))
    notifier = _APPRISE.get(key)
    if notifier is None:
        notifier = apprise.Apprise()
        for url in dest.options["urls"]:
            if not notifier.add(url.reveal()):
                raise DeliveryError(
                    "refused", f"apprise {dest.name}: a URL Apprise does not know", retry=False
                )
        _APPRISE[key] = notifier
    title, body = apprise_message(alerts)
    result = await notifier.async_notify(title=title, body=body, body_format=apprise.NotifyFormat.MARKDOWN)
    if not result:
        failed = getattr(result, "failed_count", "some")
        raise DeliveryError(
            "unreachable", f"apprise {dest.name}: {failed} service(s) did not take it", retry=True
        )
