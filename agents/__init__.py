"""wirewatch's Faust agents, one module per stage of PIPELINE (streams/pipeline/topology.py)."""

from __future__ import annotations

import importlib
import operator
from typing import TYPE_CHECKING

from streams.pipeline.topology import PIPELINE

if TYPE_CHECKING:
    from streams.pipeline.runtime import Runtime

#: Every agent module, in pipeline order: each has handle(runtime, record) for its input topic's records
#: and, when it runs timers, start(runtime).
AGENT_MODULES: tuple[str, ...] = tuple(stage.name for stage in PIPELINE)

#: Marks this package as wirewatch's own, not the `agents` of the openai-agents distribution.
WIREWATCH_AGENTS = True


def attach_agents(runtime: Runtime, names: tuple[str, ...] | None = None) -> None:
    """Attach each stage's agent as PIPELINE declares it: its input topic, key, handler and copies."""
    from streams.pipeline.topology import topic_field
    from streams.settings import ConfigError

    for name in names or AGENT_MODULES:
        if name not in AGENT_MODULES:
            raise ConfigError(f"setting 'agents': unknown agent {name!r}; known: {', '.join(AGENT_MODULES)}")
    for stage in PIPELINE:
        if names and stage.name not in names:
            continue
        module = importlib.import_module(f"{__package__}.{stage.name}")
        if stage.input is not None:
            copies = {
                "one": 1,
                "cpu": runtime.cpu_concurrency,
                "fetch": runtime.settings.fetch_concurrency,
            }[stage.concurrency]
            topic = getattr(runtime.topics, topic_field(stage.input))
            key = operator.attrgetter(stage.key)
            if stage.batched:
                runtime.batch_agent(topic, stage.name, module.handle, key=key)
            else:
                runtime.stage_agent(topic, stage.name, module.handle, key=key, concurrency=copies)
        start = getattr(module, "start", None)
        if start is not None:
            start(runtime)
