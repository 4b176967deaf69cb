"""The report server's JSON API on real data: demo upstreams → gateway → Redis → worker."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from diffsvc.errors import ConfigError
from diffsvc.report import server
from diffsvc.storage import rulestore

PRODUCTS = "GET /api/products/{id}"


def call(base: str, path: str, method: str = "GET", body: Any = None,
         token: str | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def ep(name: str) -> str:
    return "/api/v1/endpoints/" + urllib.parse.quote(name, safe="")


def test_summary_lists_endpoints_by_mismatch_rate_with_latency(demo_stack):
    status, body = call(demo_stack.report.url, "/api/v1/summary?window=15m")
    assert status == 200
    names = [e["endpoint"] for e in body["endpoints"]]
    assert names[0] == PRODUCTS
    assert set(names) == {PRODUCTS, "GET /api/users/{id}", "GET /api/search"}
    products = body["endpoints"][0]
    assert (products["pairs"], products["mismatches"], products["matches"]) == (30, 10, 20)
    assert products["mismatch_rate"] == pytest.approx(1 / 3, abs=1e-5)
    for side in ("primary", "candidate"):
        lat = products["latency_ms"][side]
        assert lat["p50"] is not None and 0 < lat["p50"] <= lat["p99"]
    assert any(x is not None and x > 0.3 for x in products["spark"])
    assert body["totals"]["pairs"] == 60
    # a window in the past holds nothing
    status, old = call(demo_stack.report.url, "/api/v1/summary?since=2001-01-01T00:00:00&until=2001-01-01T01:00:00")
    assert status == 200 and all(e["pairs"] == 0 for e in old["endpoints"])


def test_bad_window_names_the_parameter(demo_stack):
    status, body = call(demo_stack.report.url, "/api/v1/summary?window=soon")
    assert status == 400 and body["parameter"] == "window"
    status, body = call(demo_stack.report.url, "/api/v1/summary?since=yesterday")
    assert status == 400 and body["parameter"] == "since"


def test_endpoint_detail_fields_samples_and_exchange(demo_stack):
    status, detail = call(demo_stack.report.url, ep(PRODUCTS))
    assert status == 200
    price = next(f for f in detail["fields"] if f["path"] == "$.price")
    assert (price["raw"], price["effective"], price["ignored"]) == (10, 10 - price["noise"], False)
    assert len(detail["samples"]) == 10
    sample = detail["samples"][0]
    assert sample["verdict"] == "mismatch" and "$.price" in sample["paths"]
    status, x = call(demo_stack.report.url, "/api/v1/exchanges/" + sample["id"])
    assert status == 200
    assert x["endpoint"] == PRODUCTS and x["request"]["method"] == "GET"
    assert x["request"]["curl"].startswith("curl ") and x["request"]["path"] in x["request"]["curl"]
    prim, cand = x["responses"]["primary"]["body"]["json"], x["responses"]["candidate"]["body"]["json"]
    assert prim["price"] != cand["price"]
    [diff] = [d for d in x["comparison"]["diffs"] if d["path"] == "$.price"]
    assert (diff["primary"], diff["candidate"]) == (prim["price"], cand["price"])
    assert x["responses"]["primary"]["elapsed_ms"] > 0
    assert call(demo_stack.report.url, "/api/v1/exchanges/nope")[0] == 404
    assert call(demo_stack.report.url, ep("GET /nothing"))[0] == 404


def test_ui_rule_is_applied_by_workers_to_new_exchanges_and_exported(demo_stack):
    base = demo_stack.report.url
    status, rule = call(base, "/api/v1/rules", "POST", {"path": "$.price", "endpoint": PRODUCTS})
    assert status == 201 and rule["path"] == "$.price"
    assert call(base, "/api/v1/rules", "POST", {"path": "price"})[1]["parameter"] == "path"
    demo_stack.send([f"/api/products/{i}" for i in range(1, 31)])
    detail = call(base, ep(PRODUCTS))[1]
    price = next(f for f in detail["fields"] if f["path"] == "$.price")
    assert price["raw"] == 10 and price["ignored"] is True  # no new counts after the rule
    assert detail["totals"]["pairs"] == 60 and detail["totals"]["mismatches"] == 10
    assert [r["path"] for r in detail["rules"]] == ["$.price"]
    status, yaml_text = call(base, "/api/v1/rules?format=yaml")
    assert "match: GET /api/products/{id}" in yaml_text and "$.price" in yaml_text
    assert rulestore.to_yaml(rulestore.list_rules(demo_stack.r)) == yaml_text
    assert call(base, "/api/v1/rules/" + rule["id"], "DELETE")[0] == 200
    assert call(base, "/api/v1/rules")[1]["rules"] == []
    demo_stack.send(["/api/products/3"])
    detail = call(base, ep(PRODUCTS))[1]
    assert next(f for f in detail["fields"] if f["path"] == "$.price")["raw"] == 11


def test_clear_one_endpoint_then_all(demo_stack):
    base = demo_stack.report.url
    status, body = call(base, ep(PRODUCTS), "DELETE")
    assert status == 200 and body["keys_deleted"] > 0
    names = [e["endpoint"] for e in call(base, "/api/v1/summary")[1]["endpoints"]]
    assert PRODUCTS not in names and "GET /api/users/{id}" in names
    assert call(base, "/api/v1/data", "DELETE")[0] == 200
    assert call(base, "/api/v1/summary")[1]["endpoints"] == []


def test_openapi_document_lists_the_routes(demo_stack):
    status, doc = call(demo_stack.report.url, "/api/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert {"/summary", "/endpoints/{name}", "/exchanges/{id}", "/rules", "/rules/{id}",
            "/data", "/gate"} <= set(doc["paths"])
    served = {res.canonical.removeprefix("/api/v1") for res in demo_stack.report.app.router.resources()
              if res.canonical.startswith("/api/v1/")}
    assert served <= set(doc["paths"]), f"routes missing from the OpenAPI document: {served - set(doc['paths'])}"


def test_token_protects_the_api_but_not_the_ui_files(serve, r, make_config):
    app = server.build_app(make_config(report_token="s3cret"))
    base = serve(app).url
    assert call(base, "/api/v1/summary")[0] == 401
    assert call(base, "/api/v1/summary", token="wrong")[0] == 401
    assert call(base, "/api/v1/summary", token="s3cret")[0] == 200
    assert call(base, "/api/v1/summary?token=s3cret")[0] == 200
    assert call(base, "/")[0] == 200 and call(base, "/static/app.js")[0] == 200


def test_non_loopback_without_token_refuses_to_start(make_config):
    with pytest.raises(ConfigError) as exc:
        server.build_app(make_config(report_listen="0.0.0.0:8081"))
    assert exc.value.key == "report.token"
    server.build_app(make_config(report_listen="0.0.0.0:8081", report_token="t"))
    server.build_app(make_config(report_listen="[::1]:8081"))
