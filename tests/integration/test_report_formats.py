"""`diffsvc report --format markdown|junit` on real comparisons (demo upstreams, real Redis)."""

from __future__ import annotations

import subprocess
import sys
from xml.etree import ElementTree as ET

PRODUCTS = "GET /api/products/{id}"


def report(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "diffsvc", "report", "--redis-url", redis_url,
                           *args], capture_output=True, text=True, timeout=60)


def test_junit_has_one_case_per_endpoint_failing_above_threshold(demo_stack, redis_url):
    out = report(redis_url, "--format", "junit", "--max-mismatch-rate", "5%")
    assert out.returncode == 0, out.stderr
    root = ET.fromstring(out.stdout)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {PRODUCTS, "GET /api/users/{id}", "GET /api/search"}
    failure = cases[PRODUCTS].find("failure")
    assert failure is not None and "33.33% (10/30) is above 5.00%" in failure.get("message", "")
    assert "$.price: 10" in (failure.text or "")
    assert cases["GET /api/users/{id}"].find("failure") is None
    assert root.get("failures") == "1"
    relaxed = ET.fromstring(report(redis_url, "--format", "junit",
                                   "--max-mismatch-rate", "0.5").stdout)
    assert relaxed.get("failures") == "0"


def test_markdown_table_for_pull_requests(demo_stack, redis_url):
    out = report(redis_url, "--format", "markdown")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("### ❌ diffsvc: 1 of 3 endpoints above 0.0%")
    row = next(line for line in lines if PRODUCTS in line)
    assert row.startswith("| ❌ `GET /api/products/{id}` | 30 | 10 | 0 | 33.33% |")
    assert "`$.price` (10)" in row


def test_bad_threshold_is_named(redis_url):
    out = report(redis_url, "--format", "junit", "--max-mismatch-rate", "2")
    assert out.returncode == 64 and "--max-mismatch-rate" in out.stderr  # EX_USAGE


def test_rules_export_prints_config_yaml(demo_stack, redis_url):
    import yaml

    from diffsvc import config
    from diffsvc.storage import rulestore

    rulestore.add(demo_stack.r, "$.price", PRODUCTS)
    rulestore.add(demo_stack.r, "$.debug", "*")
    out = subprocess.run([sys.executable, "-m", "diffsvc", "rules", "export", "--redis-url",
                          redis_url], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    assert doc == {"ignore": {"fields": ["$.debug"]},
                   "routes": [{"match": PRODUCTS, "ignore": {"fields": ["$.price"]}}]}
    config.load(overrides={"ignore": doc["ignore"], "routes": doc["routes"]})  # valid config
