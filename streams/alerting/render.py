"""Alerts rendered for Slack, email and webhooks, with article text treated as hostile throughout."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import orjson

from streams.records import Alert

#: Control characters, line and paragraph separators: nothing from an article may start a new header
#: line in an email or a new line of a Slack message.
_BREAKS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")

SIGNATURE_HEADER = "X-Wirewatch-Signature"


def one_line(text: str, limit: int = 200) -> str:
    """Text on a single line: every run of control or line-breaking characters becomes one space."""
    flat = _BREAKS.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def slack_escape(text: str) -> str:
    """Slack's three control characters escaped, so `<!channel>` or `<@U1>` in a headline stays text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str, label: str) -> str:
    # A `|` or `>` inside the URL would end the link early and let the rest pose as its label.
    safe_url = slack_escape(url).replace("|", "%7C")
    return f"<{safe_url}|{slack_escape(one_line(label))}>"


def _matched(alert: Alert) -> list[str]:
    """One line per watch: the names as they appeared and how each was matched."""
    lines: list[str] = []
    for watch in alert.watches:
        forms = {m.text: m.how for m in alert.matches if m.watch == watch}
        shown = ", ".join(f"{one_line(text, 60)} ({how})" for text, how in sorted(forms.items()))
        lines.append(f"{watch}: {shown}")
    return lines


def _headline(alert: Alert) -> str:
    """The watches and the title; a feed health alert's title says it all."""
    return f"{', '.join(alert.watches)}: {alert.title}" if alert.watches else alert.title


def slack_message(alert: Alert) -> dict[str, Any]:
    """A Block Kit message: linked title, source and time, the matched names, and the snippet."""
    when = alert.published or alert.created_at
    names = "\n".join(f"• *{slack_escape(line)}*" for line in _matched(alert))
    fallback = slack_escape(one_line(_headline(alert)))
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*" + _slack_link(alert.url, alert.title) + "*"},
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": slack_escape(f"{one_line(alert.source, 80)} · {when}")}],
        },
    ]
    # A feed health alert names no watches, and Slack refuses a section with empty text.
    if names:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": names}})
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "> " + slack_escape(one_line(alert.snippet, 600))},
        }
    )
    return {
        "text": fallback,
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


#: Block Kit allows 50 blocks a message; a digest shows this many alerts and counts the rest.
DIGEST_MAX = 10


# Markdown's own characters, escaped in article text so a headline cannot bold, link or quote anything.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<])")
# "@here", "@channel", "@everyone", "@someone": a zero-width joiner keeps them from notifying anybody.
_MENTION = re.compile(r"@(?=\w)")


def markdown_text(text: str, limit: int = 200) -> str:
    """Article text for a Markdown message (Apprise): one line, its Markdown escaped, its mentions inert."""
    return _MENTION.sub("@\u2060", _MARKDOWN.sub(r"\\\1", one_line(text, limit)))


def apprise_message(alerts: Sequence[Alert]) -> tuple[str, str]:
    """(title, Markdown body) of one alert, or of a digest: the services Apprise reaches that take
    Markdown render it, the others get it as text. Links are written out in full, never behind a label."""
    if len(alerts) == 1:
        alert = alerts[0]
        when = alert.published or alert.created_at
        lines = [f"**{markdown_text(line)}**" for line in _matched(alert)]
        lines += [
            "",
            markdown_text(alert.snippet, 600),
            "",
            f"{markdown_text(alert.source, 80)} · {markdown_text(when, 40)}",
            markdown_text(alert.url, 400),
        ]
        # The title is plain text to every service, but a mention in it would still notify.
        return _MENTION.sub("@\u2060", one_line(_headline(alert), 250)), "\n".join(lines)
    shown = alerts[:DIGEST_MAX]
    lines = [
        f"- {markdown_text(a.title, 160)} ({markdown_text(a.source, 60)}): "
        f"{markdown_text(', '.join(a.watches))} {markdown_text(a.url, 400)}"
        for a in shown
    ]
    if len(alerts) > len(shown):
        lines.append(f"…and {len(alerts) - len(shown)} more")
    return f"wirewatch digest: {len(alerts)} alert(s) held back by the throttle", "\n".join(lines)


def slack_digest(alerts: Sequence[Alert]) -> dict[str, Any]:
    """One message for alerts held back by a throttle: a linked title and the watches of each."""
    shown = alerts[:DIGEST_MAX]
    lines = [
        f"• {_slack_link(a.url, a.title)} ({slack_escape(one_line(a.source, 60))}): "
        + slack_escape(", ".join(a.watches))
        for a in shown
    ]
    if len(alerts) > len(shown):
        lines.append(f"…and {len(alerts) - len(shown)} more")
    header = f"*Digest: {len(alerts)} alert(s) held back by the throttle*"
    return {
        "text": f"wirewatch digest: {len(alerts)} alert(s)",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": header + "\n" + "\n".join(lines)}}],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def email_digest(alerts: Sequence[Alert], sender: str, recipients: Sequence[str]) -> EmailMessage:
    """One email for the alerts a throttle held back."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    watches = sorted({w for a in alerts for w in a.watches})
    msg["Subject"] = one_line(f"[wirewatch] digest: {len(alerts)} alert(s) on {', '.join(watches)}", 180)
    msg.set_content(
        "\n\n".join(
            f"{one_line(a.title)}\n{a.url}\n{', '.join(a.watches)}: {one_line(a.snippet, 300)}"
            for a in alerts
        )
    )
    e = html.escape
    items = "".join(
        f'<li><a href="{e(a.url)}">{e(one_line(a.title))}</a> ({e(", ".join(a.watches))})<br>'
        f"{e(one_line(a.snippet, 300))}</li>"
        for a in alerts
    )
    msg.add_alternative(f"<ul>{items}</ul>", subtype="html")
    return msg


def email_message(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """A multipart text and HTML email; the subject cannot carry a header of its own."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = one_line(f"[wirewatch] {_headline(alert)}", 180)
    msg["X-Wirewatch-Alert-Id"] = alert.alert_id
    names = _matched(alert)
    text = "\n".join(
        [
            one_line(alert.title),
            alert.url,
            f"{one_line(alert.source, 80)}, {alert.published or alert.created_at}",
            "",
            *names,
            "",
            one_line(alert.snippet, 600),
        ]
    )
    msg.set_content(text)
    e = html.escape
    items = "".join(f"<li>{e(line)}</li>" for line in names)
    msg.add_alternative(
        f'<p><a href="{e(alert.url)}"><strong>{e(one_line(alert.title))}</strong></a><br>'
        f"{e(one_line(alert.source, 80))}, {e(alert.published or alert.created_at)}</p>"
        f"<ul>{items}</ul><blockquote>{e(one_line(alert.snippet, 600))}</blockquote>",
        subtype="html",
    )
    return msg


def webhook_request(alert: Alert, secret: bytes) -> tuple[bytes, dict[str, str]]:
    """The alert record as JSON, and headers carrying an HMAC-SHA256 of exactly those bytes."""
    body = orjson.dumps(alert.to_json())
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: f"sha256={digest}"}


def verify_signature(body: bytes, header: str, secret: bytes) -> bool:
    """What a receiver does: recompute the HMAC and compare in constant time."""
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)
