"""A real Prometheus (Debian's `prometheus`) scrapes the report server's /metrics, with the
shipped rules loaded, and reports the same mismatch rates as `diffsvc report`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from diffsvc.ops.embedded import free_port
from diffsvc.report import server
from tests.integration import demo_helpers
from tests.integration.demo_helpers import PRODUCTS, USERS

RULES = Path(__file__).resolve().parents[2] / "dashboards/prometheus/rules/diffsvc.rules.yml"
pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="prometheus is not installed (apt-get install prometheus)")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str, token: str) -> str:
        port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "diffsvc", "metrics_path": "/metrics",
                                "authorization": {"credentials": token},
                                "static_configs": [{"targets": [target]}]}],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log))
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(20)


def query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(base: str, expr: str, expected: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Until `expr` returns `expected` series whose values stopped changing."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = query(base, expr)
        except (urllib.error.URLError, ConnectionError):
            result = []
        if len(result) == expected:
            values = sorted((json.dumps(r["metric"], sort_keys=True), r["value"][1])
                            for r in result)
            if values == last:
                return result
            last = values
        time.sleep(1.0)
    raise AssertionError(f"{expr}: no stable {expected} series after {timeout} s (last {last})")


def test_prometheus_reports_the_same_rates_as_diffsvc_report(serve, r, redis_url, prometheus):
    cfg = demo_helpers.traffic(serve, r, redis_url, users=60, products=50)
    import dataclasses

    cfg = dataclasses.replace(cfg, report_token="scrape-token")
    report_server = serve(server.build_app(cfg))
    prom = prometheus(report_server.url.removeprefix("http://"), "scrape-token")

    out = subprocess.run([sys.executable, "-m", "diffsvc", "report", "--format", "json",
                          "--redis-url", redis_url], capture_output=True, text=True, check=True)
    report = {e["endpoint"]: e["mismatch_rate"] for e in json.loads(out.stdout)["endpoints"]}
    assert report[PRODUCTS] == 0.32 and report[USERS] == 0.0

    up = wait_for(prom, 'up{job="diffsvc"}', 1)
    assert up[0]["value"][1] == "1"
    computed = wait_for(prom, "sum by (endpoint) (diffsvc_mismatches_total) / (sum by (endpoint) "
                              "(diffsvc_comparisons_total) - sum by (endpoint) "
                              "(diffsvc_errors_total))", 2)
    from_prometheus = {s["metric"]["endpoint"]: float(s["value"][1]) for s in computed}
    assert from_prometheus == pytest.approx(report, abs=1e-6)

    # the shipped recording rule gives the same figure
    recorded = wait_for(prom, "endpoint:diffsvc_mismatch_ratio:total", 2)
    assert {s["metric"]["endpoint"]: float(s["value"][1]) for s in recorded} == \
        pytest.approx(report, abs=1e-6)

    fields = wait_for(prom, 'diffsvc_field_mismatches_total{path="$.price"}', 1)
    assert fields[0]["metric"]["endpoint"] == PRODUCTS and fields[0]["value"][1] == "16"
