"""This repository's packages are the ones imported, whatever else is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import agents
import schemas
import streams

ROOT = Path(__file__).resolve().parents[2]


def test_agents_is_this_repositorys_package() -> None:
    # openai-agents also installs a top-level `agents`; ours must win, or no agent would be attached.
    assert Path(agents.__file__).resolve().parent == ROOT / "agents"
    assert agents.WIREWATCH_AGENTS is True
    assert agents.AGENT_MODULES == (
        "poller",
        "fetcher",
        "cleaner",
        "deduper",
        "extractor",
        "alerter",
        "notifier",
        "deliverer",
    )
    for name in agents.AGENT_MODULES:
        assert (ROOT / "agents" / f"{name}.py").is_file()


def test_streams_and_schemas_are_ours() -> None:
    assert Path(streams.__file__).resolve().parent == ROOT / "streams"
    assert Path(schemas.__file__).resolve().parent == ROOT / "schemas"


def test_runtime_attaches_our_agents_when_another_agents_package_comes_first(tmp_path: Path) -> None:
    # Stand-in for openai-agents: a top-level `agents` package earlier on sys.path than this repository.
    fake = tmp_path / "agents"
    fake.mkdir()
    (fake / "__init__.py").write_text("OPENAI = True\n")
    script = (
        "import agents, sys\n"
        "assert getattr(agents, 'OPENAI', False), agents.__file__\n"
        "from streams.pipeline.runtime import build_runtime\n"
        "from streams.settings import load_settings\n"
        f"s = load_settings(None, env={{}}, data_dir=__import__('pathlib').Path({str(tmp_path / 'd')!r}))\n"
        "rt = build_runtime(s, 'kafka://127.0.0.1:9', feeds=[], watches=[])\n"
        "print(sorted(rt.app.agents))\n"
        "assert sys.modules['agents'].OPENAI\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "wirewatch.fetcher" in out.stdout and "wirewatch.notifier" in out.stdout
