"""Destinations and routes from wirewatch.yaml: secrets from the environment, rules checked at start."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from streams.ingest.feeds import tag
from streams.names.match import text_units
from streams.records import Alert, Delivery, WatchMatch, utcnow
from streams.settings import ConfigError, ConfigFile


class Secret:
    """A value that must never reach a log line, a repr or an exception message."""

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(from ${{{self.source}}})"

    __str__ = __repr__


#: Keys whose values are credentials: they must be written as ${VARIABLE}, never literally.
SECRET_KEYS = frozenset({"webhook_url", "token", "password", "secret"})
_VAR = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")

_DESTINATION_KEYS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required keys, optional keys)
    # api_url: a Slack-compatible API base, for a test double or an enterprise gateway.
    "slack": (set(), {"webhook_url", "token", "channel", "api_url"}),
    "email": ({"host", "sender", "to"}, {"port", "starttls", "username", "password"}),
    "webhook": ({"url", "secret"}, {"timeout"}),
    # urls: Apprise URLs (tgram://, msteams://, discord://, matrix://, ntfy://, json://...), their
    # credentials written as ${VARIABLE} and taken from the environment.
    "apprise": ({"urls"}, set()),
}


@dataclass(frozen=True)
class Destination:
    name: str
    type: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class Route:
    """Which alerts go where: watches (empty = all), any/all, nearness, language and source filters."""

    name: str
    to: tuple[str, ...]
    watches: frozenset[str] = frozenset()
    match: Literal["any", "all"] = "any"
    near: Literal["sentence", "paragraph"] | None = None
    languages: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    #: The feed tags an article must come with one of (empty: any feed).
    tags: frozenset[str] = frozenset()
    throttle_minutes: float | None = None
    # Whether this route's destinations also receive feed health alerts (a feed failing or gone silent),
    # and whether article alerts go there at all (`feed_health: only` in the config sends none).
    feed_health: bool = False
    articles: bool = True


@dataclass(frozen=True)
class Routing:
    destinations: dict[str, Destination] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()

    def route(self, name: str) -> Route | None:
        return next((r for r in self.routes if r.name == name), None)


def _secret(key: str, raw: Any, env: Mapping[str, str]) -> Secret:
    found = _VAR.match(str(raw)) if isinstance(raw, str) else None
    if found is None:
        raise ConfigError(f"{key}: a credential must come from the environment, written as ${{VARIABLE}}")
    name = found.group(1)
    if not env.get(name):
        raise ConfigError(f"{key}: environment variable {name} is not set")
    return Secret(env[name], name)


_ANY_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _with_env(key: str, raw: str, env: Mapping[str, str]) -> Secret:
    """An Apprise URL with each ${VARIABLE} taken from the environment: a Secret as a whole, since a
    service's URL carries its credentials (tgram://TOKEN/CHAT)."""
    missing = [name for name in _ANY_VAR.findall(raw) if not env.get(name)]
    if missing:
        raise ConfigError(f"{key}: environment variable {missing[0]} is not set")
    names = ", ".join(_ANY_VAR.findall(raw)) or "the config"
    return Secret(_ANY_VAR.sub(lambda m: env[m.group(1)], raw), names)


def _str_list(key: str, raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ConfigError(f"{key}: expected a name or a list of names")
    return list(raw)


def _destination(name: str, raw: Any, env: Mapping[str, str]) -> Destination:
    where = f"destinations.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    kind = raw.get("type")
    if kind not in _DESTINATION_KEYS:
        raise ConfigError(f"{where}.type: expected one of {', '.join(_DESTINATION_KEYS)}, not {kind!r}")
    required, optional = _DESTINATION_KEYS[kind]
    for key in raw:
        if key != "type" and key not in required | optional:
            raise ConfigError(f"{where}.{key}: unknown key for a {kind} destination")
    for key in required:
        if key not in raw:
            raise ConfigError(f"{where}.{key}: required for a {kind} destination")
    if kind == "slack" and ("webhook_url" in raw) == ("token" in raw):
        raise ConfigError(f"{where}: give either webhook_url or token (with channel)")
    if kind == "slack" and "token" in raw and "channel" not in raw:
        raise ConfigError(f"{where}.channel: required with a bot token")
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "type":
            continue
        if key in SECRET_KEYS:
            options[key] = _secret(f"{where}.{key}", value, env)
        elif key == "to":
            options[key] = _str_list(f"{where}.to", value)
        elif key == "urls":
            options[key] = [_with_env(f"{where}.urls", url, env) for url in _str_list(f"{where}.urls", value)]
        else:
            options[key] = value
    return Destination(name, kind, options)


def _route(i: int, raw: Any, destinations: Mapping[str, Destination], known_watches: set[str]) -> Route:
    where = f"routes[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    allowed = {
        "name",
        "to",
        "watches",
        "match",
        "near",
        "languages",
        "sources",
        "tags",
        "throttle_minutes",
        "feed_health",
    }
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(allowed))})")
    if "to" not in raw:
        raise ConfigError(f"{where}.to: required")
    to = _str_list(f"{where}.to", raw["to"])
    for dest in to:
        if dest not in destinations:
            raise ConfigError(f"{where}.to: no destination named {dest!r}")
    watches_raw = raw.get("watches", "all")
    watches = set() if watches_raw == "all" else set(_str_list(f"{where}.watches", watches_raw))
    for watch in sorted(watches - known_watches):
        raise ConfigError(f"{where}.watches: {watch!r} is not in the watchlist")
    match = raw.get("match", "any")
    if match not in ("any", "all"):
        raise ConfigError(f"{where}.match: expected any or all, not {match!r}")
    near = raw.get("near")
    if near not in (None, "sentence", "paragraph"):
        raise ConfigError(f"{where}.near: expected sentence or paragraph, not {near!r}")
    throttle = raw.get("throttle_minutes")
    if throttle is not None and (not isinstance(throttle, int | float) or throttle <= 0):
        raise ConfigError(f"{where}.throttle_minutes: expected a positive number of minutes")
    feed_health = raw.get("feed_health", False)
    if feed_health not in (True, False, "only"):
        raise ConfigError(f"{where}.feed_health: expected true, false or only")
    return Route(
        name=str(raw.get("name", f"route-{i}")),
        to=tuple(to),
        watches=frozenset(watches),
        match=match,
        near=near,
        languages=frozenset(_str_list(f"{where}.languages", raw.get("languages", []))),
        sources=frozenset(_str_list(f"{where}.sources", raw.get("sources", []))),
        tags=frozenset(tag(t) for t in _str_list(f"{where}.tags", raw.get("tags", [])) if tag(t)),
        throttle_minutes=float(throttle) if throttle is not None else None,
        feed_health=feed_health is not False,
        articles=feed_health != "only",
    )


def parse_routing(doc: Mapping[str, Any], env: Mapping[str, str], known_watches: set[str]) -> Routing:
    """The destinations and routes of a loaded wirewatch.yaml; ConfigError names the first bad key."""
    raw_dest = doc.get("destinations", {}) or {}
    if not isinstance(raw_dest, dict):
        raise ConfigError("destinations: expected a mapping of names to destinations")
    destinations = {str(name): _destination(str(name), raw, env) for name, raw in raw_dest.items()}
    raw_routes = doc.get("routes", []) or []
    if not isinstance(raw_routes, list):
        raise ConfigError("routes: expected a list")
    routes = tuple(_route(i, raw, destinations, known_watches) for i, raw in enumerate(raw_routes))
    return Routing(destinations, routes)


def load_routing(
    config: ConfigFile | Path | None, env: Mapping[str, str], known_watches: set[str]
) -> Routing:
    """Destinations and routes from the config file (none without one)."""
    config = ConfigFile.read(config)
    if config.path is None:
        return Routing()
    try:
        return parse_routing(dict(config.doc), env, known_watches)
    except ConfigError as exc:
        raise ConfigError(f"config {config.path}: {exc}") from exc


def route_applies(
    route: Route,
    matches: Sequence[WatchMatch],
    text: str,
    language: str | None,
    source: str,
    tags: Sequence[str] = (),
) -> bool:
    """Whether an article's matches satisfy the route's rule."""
    if not route.articles:
        return False
    if route.languages and (language or "") not in route.languages:
        return False
    if route.sources and source not in route.sources:
        return False
    if route.tags and not route.tags & set(tags):
        return False
    relevant = [m for m in matches if not route.watches or m.watch in route.watches]
    named = {m.watch for m in relevant}
    if not named or (route.match == "all" and route.watches and not route.watches <= named):
        return False
    if route.near is None:
        return True
    # An actor and a location named in the same sentence or paragraph.
    for start, end in text_units(text, route.near):
        kinds = {m.kind for m in relevant if start <= m.start < end}
        if {"actor", "location"} <= kinds:
            return True
    return False


class _Routable(Protocol):
    text: str
    language: str | None
    source: str
    tags: list[str]


def deliveries_for(routing: Routing, article: _Routable, alert: Alert, reply_to: str = "") -> list[Delivery]:
    """One delivery per destination that a route applying to the article and its alert names (each once)."""
    out: dict[str, Delivery] = {}
    for route in routing.routes:
        if not route_applies(
            route, alert.matches, article.text, article.language, article.source, article.tags
        ):
            continue
        for dest in route.to:
            out.setdefault(dest, _delivery(alert, dest, route.name, reply_to))
    return list(out.values())


def _delivery(alert: Alert, dest: str, route: str, reply_to: str) -> Delivery:
    return Delivery(
        delivery_id=f"{alert.alert_id}:{dest}",
        destination=dest,
        route=route,
        alerts=[alert],
        queued_at=utcnow(),
        reply_to=reply_to,
    )


def health_deliveries(routing: Routing, alert: Alert) -> list[Delivery]:
    """A feed health alert goes to the destinations of every route that asks for feed health."""
    out: dict[str, Delivery] = {}
    for route in routing.routes:
        if route.feed_health:
            for dest in route.to:
                out.setdefault(dest, _delivery(alert, dest, route.name, ""))
    return list(out.values())
