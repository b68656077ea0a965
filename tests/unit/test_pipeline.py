"""PIPELINE is the topology: the agents follow it, the README and `wirewatch topology` print it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from streams.cli import main
from streams.kafka.topics import DEADLETTER, RECORD_TYPES, Topics
from streams.pipeline.topology import PIPELINE, render_topology, topic_field

ROOT = Path(__file__).resolve().parents[2]
# What a Runtime method or a publishing function an agent calls writes to, besides rt.topics.<name>.
_WRITES_THROUGH = {
    "publish_alert": {"alerts", "deliveries"},
    "dead_letter": {"deadletter"},
    "publish_items": {"feed_items", "deadletter"},
}


def test_the_readmes_diagram_is_the_declared_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```\n", readme.index("<!-- `wirewatch topology`")) + 4
    assert readme[start : readme.index("```", start)] == render_topology()


def test_wirewatch_topology_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology"]) == 0
    assert capsys.readouterr().out == render_topology()


def test_every_stage_keys_a_field_of_its_input_record_and_reads_a_declared_topic() -> None:
    fields = set(Topics.__dataclass_fields__)
    for stage in PIPELINE:
        for topic in (*([stage.input] if stage.input else []), *stage.outputs):
            assert topic in RECORD_TYPES and topic_field(topic) in fields, (stage.name, topic)
        if stage.input is not None:
            record = RECORD_TYPES[stage.input]
            assert stage.key in {n for c in record.__mro__ for n in getattr(c, "__annotations__", {})}, (
                stage.name
            )


@pytest.mark.parametrize("stage", PIPELINE, ids=lambda s: s.name)
def test_each_agent_writes_only_the_topics_its_stage_declares(stage: object) -> None:
    from streams.pipeline.topology import Stage

    assert isinstance(stage, Stage)
    module = importlib.import_module(f"agents.{stage.name}")
    assert callable(getattr(module, "handle" if stage.input else "start"))
    tree = ast.parse((ROOT / "agents" / f"{stage.name}.py").read_text(encoding="utf-8"))
    written: set[str] = set()
    for node in ast.walk(tree):
        # rt.send(rt.topics.X, ...) or rt.send_many(rt.topics.X, ...), and the Runtime's methods that write for it.
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if (
                node.func.attr in ("send", "send_many")
                and node.args
                and isinstance(node.args[0], ast.Attribute)
            ):
                written.add(node.args[0].attr)
            written |= _WRITES_THROUGH.get(node.func.attr, set())
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            written |= _WRITES_THROUGH.get(node.func.id, set())
    declared = {topic_field(t) for t in (*stage.outputs, DEADLETTER)}
    assert written <= declared, f"{stage.name} writes {sorted(written - declared)} it does not declare"
    assert {topic_field(t) for t in stage.outputs} <= written, f"{stage.name} declares more than it writes"


def test_the_readmes_code_map_names_every_package_and_module() -> None:
    """Each line of the README's code map names a package and, in backquotes, every module in it."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Code map") : readme.index("## Design")]
    lines = {m.group(1): m.group(2) for m in re.finditer(r"^- `([a-z_/]+/)`: (.*)$", section, re.M)}
    packages = {"agents/", "schemas/", "streams/"} | {
        f"streams/{d.name}/" for d in (ROOT / "streams").iterdir() if (d / "__init__.py").is_file()
    } - {"streams/demo_site/"}
    assert set(lines) == packages
    for package, text in lines.items():
        named = set(re.findall(r"`([a-z_]+)`", text))
        modules = {f.stem for f in (ROOT / package).glob("*.py")} - {"__init__"}
        assert named >= modules, f"{package}: {sorted(modules - named)} missing from the code map"
        assert named - modules <= {"handle"}, f"{package}: {sorted(named - modules)} are not modules there"
