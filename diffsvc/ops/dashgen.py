"""Grafana dashboards, Grafana alert rules and Prometheus rules, generated from code.

`dashboards/generate.py` writes them into the repository (committed); `diffsvc dashboards
export DIR` writes the same tree anywhere; `diffsvc dashboards push` sends them to a running
Grafana. Every PromQL expression here uses only the metrics `diffsvc.report.metrics` exports
(checked by tests/unit/test_dashboards.py)."""

from __future__ import annotations

from typing import Any

DATASOURCE_UID = "diffsvc-prometheus"
FOLDER_UID = "diffsvc"
FOLDER_TITLE = "diffsvc"
RULE_GROUP = "diffsvc"
MISMATCH_THRESHOLD = 0.05      # alert when an endpoint's mismatch rate is above this ...
MISMATCH_FOR = "5m"            # ... for this long
MIN_PAIRS_5M = 50              # with at least this many pairs in 5 minutes
DROP_THRESHOLD = 0.01          # share of mirrored requests dropped
NO_COMPARISONS_FOR = "10m"
ERROR_THRESHOLD = 0.01         # the candidate's error rate (max_error_rate's default) ...
ERROR_FOR = "2m"               # ... for this long
MIN_PAIRS_ERRORS_5M = 10       # with at least this many pairs in 5 minutes
CANDIDATE_ERRORS = 'diffsvc_errors_total{kind!="not_candidate"}'

EP = 'endpoint=~"$endpoint"'
DROP_RATIO_5M = ("sum(rate(diffsvc_shadow_dropped_total[5m])) / "
                 "sum(rate(diffsvc_gateway_requests_total[5m]))")
DS = {"type": "prometheus", "uid": "${datasource}"}


def _mismatch_ratio(window: str | None, sel: str = "") -> str:
    """Mismatches / compared pairs (errors excluded) per endpoint: the rate over `window`, or
    with None the counters since start (the figure of `diffsvc report`)."""
    braces = f"{{{sel}}}" if sel else ""

    def s(metric: str) -> str:
        series = f"{metric}{braces}"
        return f"sum by (endpoint) ({f'rate({series}[{window}])' if window else series})"

    return (f"{s('diffsvc_mismatches_total')} / ({s('diffsvc_comparisons_total')} - "
            f"{s('diffsvc_errors_total')})")


def _target(expr: str, legend: str, ref: str = "A", instant: bool = False) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref,
            "instant": instant, "range": not instant}


def _panel(pid: int, title: str, kind: str, grid: tuple[int, int, int, int],
           targets: list[dict[str, Any]], unit: str = "short", **extra: Any) -> dict[str, Any]:
    x, y, w, h = grid
    panel = {"id": pid, "type": kind, "title": title, "datasource": DS,
             "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
             "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {}}
    panel.update(extra)
    return panel


def overview() -> dict[str, Any]:
    ri = "$__rate_interval"
    quantile = ("histogram_quantile({q}, sum by (upstream, le) "
                f"(rate(diffsvc_upstream_latency_seconds_bucket[{ri}])))")
    panels = [
        _panel(1, "Mismatch rate by endpoint", "timeseries", (0, 0, 16, 9),
               [_target(_mismatch_ratio(ri, EP), "{{endpoint}}")], "percentunit",
               description="Mismatching pairs / compared pairs (errors excluded), per endpoint."),
        _panel(2, "Mismatch rate since start", "bargauge", (16, 0, 8, 9),
               [_target(_mismatch_ratio(None, EP), "{{endpoint}}", instant=True)], "percentunit",
               description="The same figure as `diffsvc report`."),
        _panel(3, "Top differing fields", "table", (0, 9, 12, 9),
               [_target(f"topk(10, sum by (endpoint, path) "
                        f"(increase(diffsvc_field_mismatches_total{{{EP}}}[$__range])))",
                        "{{endpoint}} {{path}}", instant=True)],
               transformations=[{"id": "labelsToFields", "options": {}}],
               description="Mismatches by JSONPath over the dashboard's range; paths beyond "
                           "the top N per endpoint are summed as path=\"other\"."),
        _panel(4, "Traffic", "timeseries", (12, 9, 12, 9),
               [_target(f"sum(rate(diffsvc_gateway_requests_total[{ri}]))", "requests"),
                _target(f"sum by (outcome) (rate(diffsvc_shadow_calls_total[{ri}]))",
                        "shadow {{outcome}}", "B"),
                _target(f"sum(rate(diffsvc_comparisons_total{{{EP}}}[{ri}]))", "comparisons",
                        "C")], "reqps"),
        _panel(5, "Shadow drops and capture failures", "timeseries", (0, 18, 12, 8),
               [_target(f"sum(rate(diffsvc_shadow_dropped_total[{ri}]))", "shadow dropped"),
                _target(f"sum(rate(diffsvc_capture_failures_total[{ri}]))", "capture failed",
                        "B"),
                _target(f"sum by (reason) (rate(diffsvc_collector_rejected_total[{ri}]))",
                        "collector rejected {{reason}}", "C")], "reqps"),
        _panel(6, "Upstream latency, primary vs candidate", "timeseries", (12, 18, 12, 8),
               [_target(quantile.format(q="0.5"), "p50 {{upstream}}"),
                _target(quantile.format(q="0.95"), "p95 {{upstream}}", "B"),
                _target(quantile.format(q="0.99"), "p99 {{upstream}}", "C")], "s"),
        _panel(7, "Errors and noise", "timeseries", (0, 26, 8, 8),
               [_target(f"sum by (endpoint) (rate(diffsvc_errors_total{{{EP}}}[{ri}]))",
                        "errors {{endpoint}}"),
                _target(f"sum by (endpoint) (rate(diffsvc_noise_total{{{EP}}}[{ri}]))",
                        "noise {{endpoint}}", "B")], "reqps"),
        _panel(8, "Comparison queue depth", "timeseries", (8, 26, 8, 8),
               [_target("sum(diffsvc_queue_depth)", "batches waiting")]),
        _panel(9, "Comparison duration", "timeseries", (16, 26, 8, 8),
               [_target(f"histogram_quantile(0.95, sum by (le) "
                        f"(rate(diffsvc_comparison_duration_seconds_bucket[{ri}])))", "p95"),
                _target(f"sum(rate(diffsvc_comparison_duration_seconds_sum[{ri}])) / "
                        f"sum(rate(diffsvc_comparison_duration_seconds_count[{ri}]))", "mean",
                        "B")], "s"),
    ]
    return {
        "uid": "diffsvc-overview", "title": "diffsvc overview", "tags": ["diffsvc"],
        "timezone": "browser", "schemaVersion": 39, "version": 1, "editable": True,
        "refresh": "10s", "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource",
             "query": "prometheus", "current": {"text": "Prometheus", "value": DATASOURCE_UID}},
            {"name": "endpoint", "label": "Endpoint", "type": "query", "datasource": DS,
             "query": {"query": "label_values(diffsvc_comparisons_total, endpoint)",
                       "refId": "endpoint"},
             "definition": "label_values(diffsvc_comparisons_total, endpoint)",
             "refresh": 2, "multi": True, "includeAll": True, "allValue": ".*",
             "current": {"text": "All", "value": "$__all"}, "sort": 1},
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


DASHBOARDS = {"diffsvc-overview.json": overview}


# ---- alerts: one definition, rendered as Grafana and as Prometheus rules ---------------------

ALERTS: list[dict[str, Any]] = [
    {"uid": "diffsvc-mismatch-rate", "alert": "DiffsvcMismatchRateHigh",
     "title": "diffsvc: mismatch rate high",
     "value": (f"{_mismatch_ratio('5m')} and on (endpoint) "
               f"sum by (endpoint) (increase(diffsvc_comparisons_total[5m])) >= {MIN_PAIRS_5M}"),
     "op": "gt", "threshold": MISMATCH_THRESHOLD, "for": MISMATCH_FOR, "severity": "warning",
     "summary": "{{ $labels.endpoint }}: candidate mismatch rate above "
                f"{MISMATCH_THRESHOLD:.0%} for {MISMATCH_FOR}"},
    {"uid": "diffsvc-candidate-errors", "alert": "DiffsvcCandidateErrors",
     "title": "diffsvc: candidate errors",
     "value": (f"sum by (endpoint) (rate({CANDIDATE_ERRORS}[5m])) / "
               "sum by (endpoint) (rate(diffsvc_comparisons_total[5m])) and on (endpoint) "
               "sum by (endpoint) (increase(diffsvc_comparisons_total[5m])) >= "
               f"{MIN_PAIRS_ERRORS_5M}"),
     "op": "gt", "threshold": ERROR_THRESHOLD, "for": ERROR_FOR, "severity": "critical",
     "summary": "{{ $labels.endpoint }}: the candidate fails more than "
                f"{ERROR_THRESHOLD:.0%} of the calls production answers (connect, timeout, "
                "reset, ...: see diffsvc_errors_total by kind)"},
    {"uid": "diffsvc-shadow-drops", "alert": "DiffsvcShadowDropsHigh",
     "title": "diffsvc: shadow drop rate high",
     "value": DROP_RATIO_5M,
     "op": "gt", "threshold": DROP_THRESHOLD, "for": "10m", "severity": "warning",
     "summary": f"more than {DROP_THRESHOLD:.0%} of requests not mirrored (max_inflight "
                "reached: the candidate is slow or down)"},
    {"uid": "diffsvc-no-comparisons", "alert": "DiffsvcNoComparisons",
     "title": "diffsvc: no comparisons arriving",
     "value": ("(sum(increase(diffsvc_comparisons_total[10m])) or vector(0)) and "
               "sum(increase(diffsvc_shadow_calls_total[10m])) > 0"),
     "op": "lt", "threshold": 1, "for": NO_COMPARISONS_FOR, "severity": "critical",
     "summary": "shadow calls are made but no comparisons arrive: are the workers running?"},
]
OPS = {"gt": ">", "lt": "<"}


def alert_expr(a: dict[str, Any]) -> str:
    """The alert's PromQL with its threshold (Prometheus); Grafana applies it in step C."""
    return f"({a['value']}) {OPS[a['op']]} {a['threshold']}"


def prometheus_rules() -> dict[str, Any]:
    records = [
        {"record": "endpoint:diffsvc_mismatch_ratio:rate5m", "expr": _mismatch_ratio("5m")},
        {"record": "endpoint:diffsvc_mismatch_ratio:total",
         "expr": _mismatch_ratio(None)},
        {"record": "diffsvc:shadow_drop_ratio:rate5m",
         "expr": DROP_RATIO_5M},
    ]
    alerts = [{"alert": a["alert"], "expr": alert_expr(a), "for": a["for"],
               "labels": {"severity": a["severity"]},
               "annotations": {"summary": a["summary"]}} for a in ALERTS]
    return {"groups": [{"name": "diffsvc.records", "rules": records},
                       {"name": "diffsvc.alerts", "rules": alerts}]}


def _grafana_rule_body(a: dict[str, Any], datasource_uid: str) -> dict[str, Any]:
    return {
        "uid": a["uid"], "title": a["title"], "condition": "C",
        "data": [
            {"refId": "A", "relativeTimeRange": {"from": 900, "to": 0},
             "datasourceUid": datasource_uid,
             "model": {"refId": "A", "expr": a["value"], "instant": True, "range": False,
                       "intervalMs": 1000, "maxDataPoints": 43200}},
            {"refId": "B", "relativeTimeRange": {"from": 0, "to": 0},
             "datasourceUid": "__expr__",
             "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last",
                       "settings": {"mode": "dropNN"}}},
            {"refId": "C", "relativeTimeRange": {"from": 0, "to": 0},
             "datasourceUid": "__expr__",
             "model": {"refId": "C", "type": "threshold", "expression": "B",
                       "conditions": [{"evaluator": {"type": a["op"],
                                                     "params": [a["threshold"]]}}]}},
        ],
        "noDataState": "OK", "execErrState": "Error", "for": a["for"],
        "labels": {"severity": a["severity"], "service": "diffsvc"},
        "annotations": {"summary": a["summary"]},
    }


def grafana_alert_provisioning(datasource_uid: str = DATASOURCE_UID) -> dict[str, Any]:
    """Grafana's file-provisioning format (provisioning/alerting/*.yaml)."""
    return {"apiVersion": 1, "groups": [{
        "orgId": 1, "name": RULE_GROUP, "folder": FOLDER_TITLE, "interval": "1m",
        "rules": [_grafana_rule_body(a, datasource_uid) for a in ALERTS]}]}


def grafana_alert_api_rules(folder_uid: str = FOLDER_UID,
                            datasource_uid: str = DATASOURCE_UID) -> list[dict[str, Any]]:
    """Bodies for Grafana's HTTP API POST/PUT /api/v1/provisioning/alert-rules."""
    return [{**_grafana_rule_body(a, datasource_uid), "folderUID": folder_uid,
             "ruleGroup": RULE_GROUP, "orgID": 1} for a in ALERTS]


def datasource_provisioning(prometheus_url: str = "http://prometheus:9090") -> dict[str, Any]:
    return {"apiVersion": 1, "datasources": [{
        "name": "Prometheus", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
        "url": prometheus_url, "isDefault": True, "jsonData": {"timeInterval": "5s"}}]}


def dashboard_provisioning(path: str = "/var/lib/grafana/dashboards/diffsvc") -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{
        "name": "diffsvc", "orgId": 1, "folder": FOLDER_TITLE, "folderUid": FOLDER_UID,
        "type": "file", "disableDeletion": False, "allowUiUpdates": True,
        "updateIntervalSeconds": 30, "options": {"path": path}}]}
