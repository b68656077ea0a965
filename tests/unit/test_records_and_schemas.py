"""The JSON Schemas and the record classes agree, and records serialise to what the schemas allow."""

from __future__ import annotations

import typing

import jsonschema
import orjson
import pytest

from schemas import load_schema
from streams.alerting.alert import alert_id, build_alert, render_text, snippet
from streams.kafka.topics import RECORD_TYPES
from streams.records import Alert, Entity, WatchMatch, WireRecord
from tests.factories import mention

_JSON_TYPES = {str: "string", int: "integer", float: "number"}


def _expected_type(hint: object) -> object:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is list:
        return "array"
    if args and len(typing.get_args(hint)) == 2:
        return [_JSON_TYPES[args[0]], "null"]  # type: ignore[index]
    return _JSON_TYPES[hint]  # type: ignore[index]


def _check(cls: type[WireRecord], schema: dict[str, typing.Any], defs: dict[str, typing.Any]) -> None:
    hints = typing.get_type_hints(cls)
    fields = list(cls._options.fields)
    assert list(schema["properties"]) == fields
    assert schema["required"] == fields
    assert schema["additionalProperties"] is False
    for name in fields:
        prop = schema["properties"][name]
        assert prop["type"] == _expected_type(hints[name]), name
        assert prop["description"], name
        if prop["type"] == "array":
            (item,) = typing.get_args(hints[name])
            if isinstance(item, type) and issubclass(item, WireRecord):
                ref = prop["items"]["$ref"].rsplit("/", 1)[1]
                assert ref == item.__name__
                _check(item, defs[ref], defs)


@pytest.mark.parametrize("topic", sorted(RECORD_TYPES))
def test_schema_and_record_class_agree(topic: str) -> None:
    schema = load_schema(topic)
    jsonschema.Draft202012Validator.check_schema(schema)
    # An internal topic carries the records of a public one, and so shares its schema.
    assert schema["title"] in (topic, topic.replace(".dedupe", ".clean"))
    _check(RECORD_TYPES[topic], schema, schema.get("$defs", {}))


def _alert() -> Alert:
    text = "Intro. Forces loyal to Khalifa Haftar advanced on Sirte on Friday, officials said."
    alert = build_alert(
        url="https://a.example/x",
        item_url="https://a.example/x",
        title="T",
        source="S",
        published=None,
        text=text,
        matches=[
            mention(text, "sirte", "Sirte", kind="location"),
            mention(text, "khalifa-haftar", "Khalifa Haftar"),
        ],
        snippet_chars=20,
    )
    assert alert is not None
    return alert


def test_alert_is_stable_ordered_and_valid() -> None:
    alert = _alert()
    assert alert.alert_id == alert_id("https://a.example/x") == _alert().alert_id
    assert alert_id("https://a.example/y") != alert.alert_id
    assert alert.watches == ["khalifa-haftar", "sirte"]
    assert alert.snippet == "…Forces loyal to Khalifa Haftar advanced on Sirte…"
    data = orjson.loads(alert.dumps())
    jsonschema.validate(data, load_schema("wirewatch.alerts"))
    assert Alert.from_data(data) == alert
    assert "khalifa-haftar (Khalifa Haftar)" in render_text(alert)


def test_no_alert_without_matches() -> None:
    assert (
        build_alert(
            url="u", item_url="u", title="", source="", published=None, text="x", matches=[], snippet_chars=10
        )
        is None
    )


def test_snippet_at_text_edges() -> None:
    assert snippet("Haftar spoke", 0, 6, 100) == "Haftar spoke"


def test_the_snippet_does_not_repeat_the_headline() -> None:
    title = "LNA units regroup east of Sirte"
    text = f"{title}\nUnits loyal to Khalifa Haftar moved east of Sirte on Monday."

    def alert_snippet(watch: str, surface: str) -> str:
        start = text.index(surface)
        match = WatchMatch(
            watch=watch,
            kind="location",
            text=surface,
            start=start,
            end=start + len(surface),
            how="exact",
            score=1.0,
        )
        alert = build_alert(
            url="u",
            item_url="u",
            title=title,
            source="s",
            published=None,
            text=text,
            matches=[match],
            snippet_chars=200,
        )
        assert alert is not None
        return alert.snippet

    # Named in the headline first: the snippet is about the body's mention, without the headline.
    assert alert_snippet("sirte", "Sirte") == "Units loyal to Khalifa Haftar moved east of Sirte on Monday."
    assert alert_snippet("khalifa-haftar", "Khalifa Haftar").startswith("Units loyal")


def test_entity_round_trip() -> None:
    e = Entity(text="Sirte", label="GPE", start=3, end=8)
    assert Entity.from_data(orjson.loads(e.dumps())) == e


def test_the_reason_classes_are_one_set_in_code_readme_and_schema() -> None:
    """streams/reasons.py is the list; the README's table and the dead-letter schema say the same."""
    import json
    import re
    from pathlib import Path

    from streams.reasons import BY_STAGE, REASON_CLASSES
    from streams.settings import Settings

    settings = set(Settings.__dataclass_fields__)

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| stage | reason classes |") :]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        stage, classes = line.strip("|").split("|", 1)
        rows[stage.strip()] = set(re.findall(r"`([a-z_]+)`", classes)) - settings  # a setting it names
    assert rows == {stage: set(classes) for stage, classes in BY_STAGE.items()}
    schema = json.loads((root / "schemas" / "wirewatch.deadletter.json").read_text(encoding="utf-8"))
    described = schema["properties"]["error_class"]["description"]
    words = set(re.findall(r"\b[a-z]+(?:_[a-z]+)*\b", described))
    assert words >= REASON_CLASSES
    assert {w for w in words if "_" in w} <= REASON_CLASSES
