"""The shipped Grafana dashboards are valid and query only metrics the software exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from edge.metrics.metrics import Metrics
from hub.metrics import HubMetrics

DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))


def _exported() -> set[str]:
    names: set[str] = set()
    for registry in (Metrics().registry, HubMetrics().registry):
        for family in registry.collect():
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "info": ("_info",)}
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


@pytest.mark.unit
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_only_exported_metrics(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["uid"] and board["panels"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    exported = _exported()
    used = {
        m for p in board["panels"] for t in p["targets"] for m in re.findall(r"clinic_(?:edge|hub)_[a-z_]+", t["expr"])
    }
    assert used and used <= exported, sorted(used - exported)


@pytest.mark.unit
def test_both_products_have_a_dashboard_and_provisioning_points_at_them() -> None:
    assert {p.name for p in DASHBOARDS} == {"clinic-edge-appliances.json", "clinic-hub.json"}
    provider = yaml.safe_load((ROOT / "grafana" / "provisioning" / "dashboards" / "clinic-edge.yaml").read_text())
    assert provider["providers"][0]["options"]["path"].endswith("clinic-edge")
