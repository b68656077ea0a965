"""Routes and destinations from wirewatch.yaml: secrets from the environment, bad keys named, rules."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from streams.alerting.routes import ConfigError, Route, Secret, parse_routing, route_applies
from streams.records import WatchMatch

WATCHES = {"khalifa-haftar", "sirte", "jufra", "wagner-group"}
ENV = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.example/T1/B1/xyz",
    "SMTP_PASSWORD": "pw",
    "HOOK_SECRET": "k",
}

CONFIG = """
destinations:
  desk-slack: {type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}
  desk-email:
    type: email
    host: smtp.example.org
    port: 587
    starttls: true
    username: wirewatch
    password: "${SMTP_PASSWORD}"
    sender: wirewatch@example.org
    to: [desk@example.org]
  partner: {type: webhook, url: "https://partner.example/hook", secret: "${HOOK_SECRET}"}
routes:
  - name: haftar-near-sirte
    watches: [khalifa-haftar, sirte]
    match: all
    near: paragraph
    to: [desk-slack]
  - name: everything
    to: [desk-email, partner]
    throttle_minutes: 30
"""


def _doc(text: str = CONFIG) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def test_a_full_config_parses_and_hides_its_secrets() -> None:
    routing = parse_routing(_doc(), ENV, WATCHES)
    slack = routing.destinations["desk-slack"].options["webhook_url"]
    assert isinstance(slack, Secret) and slack.reveal() == ENV["SLACK_WEBHOOK_URL"]
    assert "xyz" not in repr(routing) and "pw" not in str(routing.destinations["desk-email"])
    first, second = routing.routes
    assert first.watches == {"khalifa-haftar", "sirte"} and first.match == "all" and first.near == "paragraph"
    assert second.watches == frozenset() and second.throttle_minutes == 30.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["destinations"]["desk-slack"].update(webhook_url="https://literal"),
            r"destinations\.desk-slack\.webhook_url: a credential must come from the environment",
        ),
        (
            lambda d: d["destinations"]["partner"].update(secret="${NOT_SET}"),
            r"destinations\.partner\.secret: environment variable NOT_SET is not set",
        ),
        (
            lambda d: d["destinations"]["partner"].update(type="pager"),
            r"destinations\.partner\.type: expected one of",
        ),
        (lambda d: d["destinations"]["desk-email"].pop("host"), r"destinations\.desk-email\.host: required"),
        (
            lambda d: d["destinations"]["desk-email"].update(hots="x"),
            r"destinations\.desk-email\.hots: unknown key",
        ),
        (lambda d: d["routes"][0].update(to=["nowhere"]), r"routes\[0\]\.to: no destination named 'nowhere'"),
        (
            lambda d: d["routes"][0].update(watches=["hafter"]),
            r"routes\[0\]\.watches: 'hafter' is not in the watchlist",
        ),
        (lambda d: d["routes"][0].update(near="page"), r"routes\[0\]\.near: expected sentence or paragraph"),
        (lambda d: d["routes"][1].update(throttle_minutes=0), r"routes\[1\]\.throttle_minutes"),
        (lambda d: d["routes"][1].update(rule="x"), r"routes\[1\]\.rule: unknown key"),
    ],
)
def test_a_bad_config_is_refused_naming_the_key(change: Any, message: str) -> None:
    doc = _doc()
    change(doc)
    with pytest.raises(ConfigError, match=message):
        parse_routing(doc, ENV, WATCHES)


def test_a_missing_secret_is_not_echoed_in_the_error() -> None:
    doc = _doc()
    doc["destinations"]["desk-slack"]["webhook_url"] = "https://hooks.slack.example/T1/B1/leaked"
    with pytest.raises(ConfigError) as info:
        parse_routing(doc, ENV, WATCHES)
    assert "leaked" not in str(info.value)


TEXT = (
    "Khalifa Haftar met envoys in Benghazi on Monday.\n\n"
    "Separately, residents of Sirte reported shelling. Jufra was quiet."
)


def _m(watch: str, kind: str, surface: str) -> WatchMatch:
    start = TEXT.index(surface)
    return WatchMatch(
        watch=watch, kind=kind, text=surface, start=start, end=start + len(surface), how="exact", score=1.0
    )


def test_near_paragraph_needs_actor_and_location_in_one_paragraph() -> None:
    haftar, sirte = _m("khalifa-haftar", "actor", "Khalifa Haftar"), _m("sirte", "location", "Sirte")
    near = Route("r", ("d",), frozenset({"khalifa-haftar", "sirte"}), "all", "paragraph")
    assert not route_applies(near, [haftar, sirte], TEXT, "en", "S")
    together = TEXT.replace("in Benghazi", "in Sirte")
    sirte_first = WatchMatch(
        watch="sirte",
        kind="location",
        text="Sirte",
        start=together.index("Sirte"),
        end=together.index("Sirte") + 5,
        how="exact",
        score=1.0,
    )
    assert route_applies(near, [haftar, sirte_first], together, "en", "S")


def test_any_all_language_and_source_filters() -> None:
    sirte, jufra = _m("sirte", "location", "Sirte"), _m("jufra", "location", "Jufra")
    both = Route("r", ("d",), frozenset({"sirte", "jufra"}), "all")
    assert route_applies(both, [sirte, jufra], TEXT, "en", "S")
    assert not route_applies(both, [sirte], TEXT, "en", "S")
    anyone = Route("r", ("d",), frozenset({"sirte", "wagner-group"}), "any")
    assert route_applies(anyone, [sirte], TEXT, "en", "S")
    assert not route_applies(anyone, [jufra], TEXT, "en", "S")
    french_only = Route("r", ("d",), languages=frozenset({"fr"}))
    assert not route_applies(french_only, [sirte], TEXT, "en", "S")
    one_source = Route("r", ("d",), sources=frozenset({"Desert Wire"}))
    assert route_applies(one_source, [sirte], TEXT, None, "Desert Wire")
    assert not route_applies(one_source, [sirte], TEXT, None, "Other")


def test_a_route_chooses_by_the_tags_of_the_articles_feed() -> None:
    sirte = _m("sirte", "location", "Sirte")
    doc = {
        "destinations": {"d": {"type": "webhook", "url": "https://h.example/", "secret": "${HOOK_SECRET}"}},
        "routes": [{"to": "d", "tags": ["Libya Arabic"]}],
    }
    (route,) = parse_routing(doc, ENV, WATCHES).routes
    assert route.tags == frozenset({"libya-arabic"})  # written as the feed list's tags are
    assert route_applies(route, [sirte], TEXT, "ar", "S", ["wires", "libya-arabic"])
    assert not route_applies(route, [sirte], TEXT, "ar", "S", ["wires"])
    assert not route_applies(route, [sirte], TEXT, "ar", "S")
