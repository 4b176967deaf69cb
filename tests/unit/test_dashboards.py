"""The committed dashboards, alert rules and Prometheus rules: generated from code, and every
PromQL expression in them references only metrics the service exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from diffsvc.core import histograms as promhist
from diffsvc.ops import dashgen, grafana
from diffsvc.report import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"


def exported_names() -> set[str]:
    """Every sample name the collector produces, from a snapshot with every counter set."""
    gateway = {f: 1 for h in promhist.LATENCY.values() for f in h.fields}
    snap = metrics.Snapshot(
        totals={"GET /a": {"pairs": 2, "matches": 1, "mismatches": 1, "errors": 0, "noise": 0}},
        fields={"GET /a": {"$.x": 1}},
        gateway={**gateway, "requests": 1, "shadow_ok": 1, "shadow_dropped": 1},
        worker={f: 1 for f in promhist.DURATION.fields}, queue_depth=1)
    return {s.name for fam in metrics.families(snap) for s in fam.samples}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, label names in
    by/on clauses, label matchers, ranges and strings removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    words = [m.group(1) for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\(?)", text)
             if not m.group(2)]
    keywords = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    return {w for w in words if w not in keywords and not re.fullmatch(r"\d+(e\d+)?", w)}


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(re.sub(r"^label_values\((\w+),.*\)$", r"\1", var["definition"]))
    return exprs


def all_exprs() -> list[str]:
    exprs = [e for build in dashgen.DASHBOARDS.values() for e in dashboard_exprs(build())]
    exprs += [r["expr"] for g in dashgen.prometheus_rules()["groups"] for r in g["rules"]]
    exprs += [d["model"]["expr"] for g in dashgen.grafana_alert_provisioning()["groups"]
              for r in g["rules"] for d in r["data"] if "expr" in d["model"]]
    return exprs


def test_committed_files_are_what_the_generator_writes(tmp_path):
    grafana.export(tmp_path)
    for rel, text in grafana.tree().items():
        committed = DASHBOARDS / rel
        assert committed.exists(), f"{rel} missing: run python dashboards/generate.py"
        assert committed.read_text() == text, f"{rel} is stale: run python dashboards/generate.py"
        assert (tmp_path / rel).read_text() == text


def test_expressions_use_only_exported_metrics():
    exported = exported_names()
    assert {"diffsvc_mismatches_total", "diffsvc_upstream_latency_seconds_bucket",
            "diffsvc_comparison_duration_seconds_sum"} <= exported
    seen: set[str] = set()
    for expr in all_exprs():
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, f"{sorted(names - exported)} not exported, in: {expr}"
        seen |= names
    # the overview shows every family
    dash_names = set().union(*(metric_names(e) for e in dashboard_exprs(dashgen.overview())))
    for family in metrics.METRIC_NAMES:
        if family != "diffsvc_endpoints":
            assert any(n.startswith(family) for n in dash_names), family


def test_metric_name_parser_is_not_fooled():
    assert metric_names('sum by (endpoint, le) (rate(foo_total{path="$.a[*]"}[5m])) '
                        '/ on (endpoint) bar > 0.5 and baz') == {"foo_total", "bar", "baz"}


def test_overview_has_the_panels_and_endpoint_variable():
    dash = json.loads((DASHBOARDS / "grafana/dashboards/diffsvc-overview.json").read_text())
    titles = {p["title"] for p in dash["panels"]}
    assert {"Mismatch rate by endpoint", "Top differing fields", "Traffic",
            "Shadow drops and capture failures", "Upstream latency, primary vs candidate"} <= titles
    names = [v["name"] for v in dash["templating"]["list"]]
    assert names == ["datasource", "endpoint"]
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    for panel in dash["panels"]:
        for target in panel["targets"]:
            if "endpoint" in target["expr"] and "diffsvc_comparisons_total" in target["expr"]:
                assert '$endpoint' in target["expr"], target["expr"]


def test_grafana_provisioning_files_agree():
    ds = yaml.safe_load((DASHBOARDS / "grafana/provisioning/datasources/diffsvc.yaml").read_text())
    alerts = yaml.safe_load((DASHBOARDS / "grafana/provisioning/alerting/diffsvc.yaml").read_text())
    provider = yaml.safe_load(
        (DASHBOARDS / "grafana/provisioning/dashboards/diffsvc.yaml").read_text())
    [source] = ds["datasources"]
    assert source["uid"] == dashgen.DATASOURCE_UID and source["type"] == "prometheus"
    [group] = alerts["groups"]
    assert alerts["apiVersion"] == 1 and group["folder"] == provider["providers"][0]["folder"]
    assert {r["uid"] for r in group["rules"]} == {"diffsvc-mismatch-rate",
                                                  "diffsvc-candidate-errors",
                                                  "diffsvc-shadow-drops",
                                                  "diffsvc-no-comparisons"}
    for rule in group["rules"]:
        refs = [d["refId"] for d in rule["data"]]
        assert rule["condition"] in refs and refs[0] == "A"
        assert rule["data"][0]["datasourceUid"] == source["uid"]
        for d in rule["data"][1:]:
            assert d["datasourceUid"] == "__expr__" and d["model"]["expression"] in refs


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)")
def test_dashboard_promql_parses(tmp_path):
    """promtool checks every dashboard expression's syntax (Grafana variables substituted)."""
    subst = {"$__rate_interval": "1m", "$__range": "1h", "$endpoint": ".*"}
    rules = []
    for i, expr in enumerate(all_exprs()):
        for var, value in subst.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"check:expr_{i}", "expr": expr})
    path = tmp_path / "exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}))
    proc = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
