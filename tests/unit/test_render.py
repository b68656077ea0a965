"""Rendering alerts: hostile headlines and snippets stay inert in Slack, email and webhooks."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default

import orjson

from streams.alerting.render import (
    SIGNATURE_HEADER,
    email_message,
    one_line,
    slack_message,
    verify_signature,
    webhook_request,
)
from tests.factories import make_alert


def _slack_texts(message: dict[str, object]) -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message)
    return found


def test_slack_mentions_and_links_from_a_headline_mention_nobody() -> None:
    title = "Haftar <!channel> <!here> <@U123> read <https://evil.example|Reuters> & more"
    message = slack_message(make_alert(title, snippet="<!everyone> see <http://x.example|BBC>"))
    texts = _slack_texts(message)
    joined = "\n".join(texts)
    for hostile in ("<!channel>", "<!here>", "<@U123>", "<https://evil.example|Reuters>", "<!everyone>"):
        assert hostile not in joined
    assert "&lt;!channel&gt;" in joined and "&amp; more" in joined
    # The one Slack link is ours: the article URL, labelled with the (escaped) title.
    links = re.findall(r"<([^<>]*)>", joined)
    assert links == [
        "https://news.example/2020/06/haftar|"
        + title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    ]
    assert "Hifter (variant)" in joined


def test_slack_link_cannot_be_relabelled_by_its_url() -> None:
    message = slack_message(make_alert("Report", url="https://news.example/a|Reuters>x"))
    (link,) = re.findall(r"<([^<>]*)>", _slack_texts(message)[1])
    assert link.startswith("https://news.example/a%7CReuters&gt;x|")


def test_email_subject_with_crlf_yields_one_subject_and_no_bcc() -> None:
    msg = email_message(
        make_alert("Ceasefire talks\r\nBcc: victim@example.org\r\n\r\n<b>hi</b>"),
        "ww@example.org",
        ["desk@example.org"],
    )
    parsed = message_from_bytes(msg.as_bytes(), policy=default)
    assert parsed.get_all("Subject") is not None and len(parsed.get_all("Subject")) == 1
    assert parsed.get_all("Bcc") is None
    assert "\n" not in str(parsed["Subject"]) and "Bcc: victim" in str(parsed["Subject"])
    html_part = parsed.get_body(preferencelist=("html",))
    text_part = parsed.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    assert "<b>hi</b>" not in html_part.get_content() and "&lt;b&gt;hi&lt;/b&gt;" in html_part.get_content()
    assert "Hifter (variant)" in text_part.get_content()


def test_one_line_removes_every_kind_of_line_break() -> None:
    assert one_line("a\r\nb\u2028c\x00d\u0085e") == "a b c d e"


def test_webhook_body_is_the_alert_record_signed_with_hmac() -> None:
    alert = make_alert("Report")
    body, headers = webhook_request(alert, b"s3cret")
    assert orjson.loads(body) == alert.to_json()
    assert verify_signature(body, headers[SIGNATURE_HEADER], b"s3cret")
    assert not verify_signature(body + b" ", headers[SIGNATURE_HEADER], b"s3cret")
    assert not verify_signature(body, headers[SIGNATURE_HEADER], b"other")


def test_digests_are_one_message_and_stay_inert() -> None:
    from streams.alerting.render import DIGEST_MAX, email_digest, slack_digest

    alerts = [make_alert(f"Report {i} <!here>") for i in range(DIGEST_MAX + 3)]
    message = slack_digest(alerts)
    text = "\n".join(_slack_texts(message))
    assert "<!here>" not in text and "&lt;!here&gt;" in text
    assert "…and 3 more" in text and f"{DIGEST_MAX + 3} alert(s)" in text
    mail = message_from_bytes(email_digest(alerts, "a@b.c", ["d@e.f"]).as_bytes(), policy=default)
    assert len(mail.get_all("Subject") or []) == 1 and "digest: 13 alert(s)" in str(mail["Subject"])
    html_part = mail.get_body(preferencelist=("html",))
    assert html_part is not None and html_part.get_content().count("<li>") == 13
