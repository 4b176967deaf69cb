"""Report rates through the whole path (gateway → Redis → worker), and `diffsvc report`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from redis import Redis

from diffsvc import gateway
from diffsvc.config import Config
from diffsvc.report import data
from tests.conftest import CRITERIA, ServedApp, run_worker_burst
from tests.integration.test_gateway import counters, fetch, wait_until

USERS, PRODUCTS = 12, 8


def service(role: str) -> web.Application:
    """Users differ only in volatile fields; products differ in $.price on the candidate."""

    async def user(request: web.Request) -> web.Response:
        uid = int(request.match_info["id"])
        return web.json_response({
            "id": uid, "name": f"user {uid}", "request_id": uuid.uuid4().hex,
            "meta": {"generated_at": f"{role}-{uuid.uuid4().hex}"},
            "orders": [{"n": i, "updated_at": uuid.uuid4().hex} for i in range(3)],
        }, headers={"X-Request-Id": uuid.uuid4().hex})

    async def product(request: web.Request) -> web.Response:
        pid = int(request.match_info["id"])
        price = 10.0 + pid + (0.5 if role == "candidate" else 0.0)
        return web.json_response({"id": pid, "price": price, "request_id": uuid.uuid4().hex})

    app = web.Application()
    app.router.add_get("/api/users/{id}", user)
    app.router.add_get("/api/products/{id}", product)
    return app


IGNORE = {"fields": ["$.request_id", "$..generated_at", "$.orders[*].updated_at"], "headers": []}


@pytest.fixture
def compared(serve: Callable[[web.Application], ServedApp], make_config: Callable[..., Config],
             r: Redis) -> Config:
    """Traffic to both endpoints through a real gateway, captured and compared."""
    prod, cand = serve(service("prod")), serve(service("candidate"))
    cfg = make_config(primary=prod.url, candidate=cand.url, ignore=IGNORE)
    gw = serve(gateway.build_app(cfg))
    for uid in range(USERS):
        assert fetch(gw.url, f"/api/users/{uid}")[0] == 200
    for pid in range(PRODUCTS):
        assert fetch(gw.url, f"/api/products/{pid}")[0] == 200
    total = USERS + PRODUCTS
    wait_until(lambda: counters(gw).get("captured", 0) >= total, f"{total} captured")
    run_worker_burst(cfg)
    return cfg


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["endpoint"]: e for e in report["endpoints"]}


def test_only_ignored_fields_differ_gives_rate_zero(compared: Config, r: Redis) -> None:
    users = by_name(data.build(r, CRITERIA).to_dict())["GET /api/users/{id}"]
    assert (users["pairs"], users["matches"], users["mismatches"], users["errors"]) == \
        (USERS, USERS, 0, 0)
    assert users["mismatch_rate"] == 0.0
    assert users["fields"] == []


def test_changed_field_gives_rate_one_with_its_path(compared: Config, r: Redis) -> None:
    products = by_name(data.build(r, CRITERIA).to_dict())["GET /api/products/{id}"]
    assert (products["pairs"], products["mismatches"]) == (PRODUCTS, PRODUCTS)
    assert products["mismatch_rate"] == 1.0
    assert [(f["path"], f["mismatches"]) for f in products["fields"]] == [("$.price", PRODUCTS)]


def test_endpoints_sorted_by_mismatch_rate(compared: Config, r: Redis) -> None:
    names = [e["endpoint"] for e in data.build(r, CRITERIA).to_dict()["endpoints"]]
    assert names == ["GET /api/products/{id}", "GET /api/users/{id}"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFSVC_")}
    return subprocess.run([sys.executable, "-m", "diffsvc", *args], capture_output=True,
                          text=True, timeout=60, env=env, check=False)


def test_report_json_has_the_documented_shape(compared: Config) -> None:
    assert compared.redis_url
    done = _cli("report", "--format", "json", "--redis-url", compared.redis_url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert isinstance(report["endpoints"], list) and len(report["endpoints"]) == 2
    for entry in report["endpoints"]:
        assert isinstance(entry["endpoint"], str)
        for key in ("pairs", "matches", "mismatches", "errors"):
            assert isinstance(entry[key], int) and not isinstance(entry[key], bool), key
        assert isinstance(entry["mismatch_rate"], float)
        for f in entry["fields"]:
            assert isinstance(f["path"], str) and isinstance(f["mismatches"], int)
    products = by_name(report)["GET /api/products/{id}"]
    assert {k: products[k] for k in ("endpoint", "pairs", "matches", "mismatches", "errors",
                                     "mismatch_rate")} == {
        "endpoint": "GET /api/products/{id}", "pairs": PRODUCTS, "matches": 0,
        "mismatches": PRODUCTS, "errors": 0, "mismatch_rate": 1.0}
    assert [{"path": f["path"], "mismatches": f["mismatches"]} for f in products["fields"]] == \
        [{"path": "$.price", "mismatches": PRODUCTS}]


def test_report_endpoint_filter_and_table(compared: Config) -> None:
    assert compared.redis_url
    done = _cli("report", "--format", "json", "--endpoint", "GET /api/users/{id}",
                "--redis-url", compared.redis_url)
    assert done.returncode == 0, done.stderr
    assert [e["endpoint"] for e in json.loads(done.stdout)["endpoints"]] == ["GET /api/users/{id}"]
    table = _cli("report", "--redis-url", compared.redis_url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[0] == "ENDPOINT"
    products = next(i for i, line in enumerate(lines) if "GET /api/products/{id}" in line)
    users = next(i for i, line in enumerate(lines) if "GET /api/users/{id}" in line)
    assert products < users  # highest mismatch rate first
    assert "$.price" in lines[products + 1]
    for volatile in ("request_id", "generated_at", "updated_at"):
        assert volatile not in table.stdout


def test_report_on_empty_redis(r: Redis, redis_url: str) -> None:
    done = _cli("report", "--redis-url", redis_url)
    assert done.returncode == 0
    assert "no comparisons yet" in done.stdout
    done = _cli("report", "--format", "json", "--redis-url", redis_url)
    assert json.loads(done.stdout)["endpoints"] == []
