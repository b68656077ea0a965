"""Metric labels stay bounded, and the Grafana dashboard and the README name only metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streams import metrics

ROOT = Path(__file__).resolve().parents[2]
NAMES = {
    m._name  # type: ignore[attr-defined]
    for m in vars(metrics).values()
    if hasattr(m, "_name") and str(getattr(m, "_name", "")).startswith("wirewatch_")
}


def _base(name: str) -> str:
    return re.sub(r"_(total|bucket|count|sum|created)$", "", name)


def test_labels_are_words_not_urls_or_messages() -> None:
    assert metrics.outcome_label("duplicate: same text as https://a.example/1") == "duplicate"
    assert metrics.outcome_label("no watch named") == "no_watch_named"
    assert metrics.reason_label("http_error") == "http_error"
    assert metrics.reason_label("KeyError") == "exception"  # an exception's name is no bounded label


def test_the_dashboard_queries_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "wirewatch-dashboard.json").read_text())
    used = {
        _base(name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"wirewatch_[a-z_]+", target["expr"])
    }
    assert used <= NAMES
    assert len(used) >= 10


def test_the_readme_lists_every_metric() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Operating wirewatch") :]
    listed = {_base(n) for n in re.findall(r"`(wirewatch_[a-z_]+)`", section)}
    assert listed == NAMES
