"""This repository's packages are the ones imported, whatever else is installed."""

from __future__ import annotations

from pathlib import Path

import agents
import schemas
import streams

ROOT = Path(__file__).resolve().parents[2]


def test_agents_is_this_repositorys_package() -> None:
    # openai-agents also installs a top-level `agents`; ours must win, or no agent would be attached.
    assert Path(agents.__file__).resolve().parent == ROOT / "agents"
    assert agents.WIREWATCH_AGENTS is True
    assert agents.AGENT_MODULES == ("poller", "fetcher", "cleaner", "extractor", "alerter", "notifier")
    for name in agents.AGENT_MODULES:
        assert (ROOT / "agents" / f"{name}.py").is_file()


def test_streams_and_schemas_are_ours() -> None:
    assert Path(streams.__file__).resolve().parent == ROOT / "streams"
    assert Path(schemas.__file__).resolve().parent == ROOT / "schemas"
