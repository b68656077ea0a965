"""wirewatch's Faust agents, one module each; attach_agents wires them onto a runtime's app."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.app import Runtime

#: Every agent module, in pipeline order; each exposes attach(runtime).
AGENT_MODULES: tuple[str, ...] = (
    "poller",
    "fetcher",
    "cleaner",
    "deduper",
    "extractor",
    "alerter",
    "notifier",
    "deliverer",
)

#: Marks this package as wirewatch's own, not the `agents` of the openai-agents distribution.
WIREWATCH_AGENTS = True


def attach_agents(runtime: Runtime, names: tuple[str, ...] | None = None) -> None:
    """Import each agent module and attach its agent to the runtime's app."""
    from streams.settings import SettingsError

    for name in names or AGENT_MODULES:
        if name not in AGENT_MODULES:
            raise SettingsError(
                f"setting 'agents': unknown agent {name!r}; known: {', '.join(AGENT_MODULES)}"
            )
        module = importlib.import_module(f"{__package__}.{name}")
        module.attach(runtime)
