"""The watchlist file: the actors and locations an analyst follows, checked line by line at start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

WatchKind = Literal["actor", "location"]
KINDS: tuple[WatchKind, ...] = ("actor", "location")
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class WatchlistError(ValueError):
    """A watchlist that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Watch:
    """One watched actor or location."""

    id: str
    kind: WatchKind
    name: str
    aliases: tuple[str, ...] = ()
    #: The ISO 3166 country a location's GeoNames entry must be in, or an actor's country; its names (in
    #: many languages) and its capital's are the watch's region, which supports its short forms.
    country: str | None = None
    #: For a location: its GeoNames entry's ID.
    geonames: int | None = None
    #: Words that show an article is about this watch's world (Libya, Libyan, Tripoli): a short or shared
    #: form of the watch (an acronym, a bare surname, a short place name) counts only beside them or other
    #: watches. The watchlist's own `context:` list is added to every watch's.
    context: tuple[str, ...] = ()


def _node_line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def parse_watchlist(text: str, source: str = "watchlist") -> list[Watch]:
    """Parse and check watchlist YAML; every error says which line is at fault."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise WatchlistError(f"{source}: not valid YAML: {exc}") from exc
    if root is None:
        raise WatchlistError(f"{source}: empty watchlist (expected a 'watches:' list)")
    if not isinstance(root, yaml.MappingNode):
        raise WatchlistError(f"{source} line {_node_line(root)}: expected a mapping with a 'watches:' list")
    watches_node: yaml.Node | None = None
    shared: tuple[str, ...] = ()
    for key, value in root.value:
        if key.value == "watches":
            watches_node = value
        elif key.value == "context":
            where = f"{source} line {_node_line(key)}"
            shared = _words_list(yaml.safe_load(yaml.serialize(value)), where, "context")
        else:
            raise WatchlistError(f"{source} line {_node_line(key)}: unknown key {key.value!r}")
    if not isinstance(watches_node, yaml.SequenceNode):
        line = _node_line(watches_node) if watches_node is not None else 1
        raise WatchlistError(f"{source} line {line}: 'watches' must be a list")
    seen: dict[str, int] = {}
    watches: list[Watch] = []
    for entry in watches_node.value:
        line = _node_line(entry)
        where = f"{source} line {line}"
        data: Any = yaml.safe_load(yaml.serialize(entry))
        if not isinstance(data, dict):
            raise WatchlistError(f"{where}: each watch must be a mapping with id, kind and name")
        unknown = set(data) - {"id", "kind", "name", "aliases", "country", "geonames", "context"}
        if unknown:
            raise WatchlistError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        wid = str(data.get("id") or "")
        if not _ID.match(wid):
            raise WatchlistError(f"{where}: id {wid!r} must match [a-z0-9-]+ (lower case, digits, hyphens)")
        if wid in seen:
            raise WatchlistError(f"{where}: duplicate id {wid!r} (first used on line {seen[wid]})")
        seen[wid] = line
        kind: WatchKind | None = next((k for k in KINDS if k == data.get("kind")), None)
        if kind is None:
            given = data.get("kind")
            raise WatchlistError(f"{where}: unknown kind {given!r} for {wid!r} (use actor or location)")
        name = " ".join(str(data.get("name") or "").split())
        if not name:
            raise WatchlistError(f"{where}: empty name for {wid!r}")
        aliases = _words_list(data.get("aliases"), where, f"aliases of {wid!r}")
        context = _words_list(data.get("context"), where, f"context of {wid!r}")
        country = data.get("country")
        if country is not None and not (isinstance(country, str) and re.fullmatch(r"[A-Za-z]{2}", country)):
            raise WatchlistError(f"{where}: country of {wid!r} must be a two-letter code such as LY")
        geonames = data.get("geonames")
        if geonames is not None and (isinstance(geonames, bool) or not isinstance(geonames, int)):
            raise WatchlistError(f"{where}: geonames of {wid!r} must be a GeoNames ID (a number)")
        if geonames is not None and kind != "location":
            raise WatchlistError(f"{where}: geonames is for locations; {wid!r} is an actor")
        watches.append(
            Watch(
                id=wid,
                kind=kind,
                name=name,
                aliases=aliases,
                country=country.upper() if country else None,
                geonames=geonames,
                context=tuple(dict.fromkeys((*context, *shared))),
            )
        )
    return watches


def _words_list(value: Any, where: str, what: str) -> tuple[str, ...]:
    """A list of names or words from the file, spaces tidied; anything else is an error."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WatchlistError(f"{where}: {what} must be a list")
    return tuple(" ".join(str(a).split()) for a in value if str(a).strip())


def load_watchlist(path: Path) -> list[Watch]:
    """Read and check a watchlist file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WatchlistError(f"{path}: {exc.strerror or exc}") from exc
    return parse_watchlist(text, str(path))
