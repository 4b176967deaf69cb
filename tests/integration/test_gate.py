"""The canary gate on the demo's traffic: pass on the clean endpoint, fail on the broken one,
inconclusive before enough pairs — over HTTP (GET and Flagger's POST) and the CLI."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from diffsvc import cli
from diffsvc.report import gate, server
from tests.integration import demo_helpers
from tests.integration.demo_helpers import PRODUCTS, USERS


def get(url: str, data: bytes | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def gate_url(base: str, **params: Any) -> str:
    return f"{base}/api/v1/gate?{urllib.parse.urlencode(params)}"


def test_gate_on_the_demo(serve, r, redis_url):
    cfg = demo_helpers.traffic(serve, r, redis_url, users=120, products=50)
    report = serve(server.build_app(cfg))
    common = {"window": "5m", "max_mismatch_rate": "0.05", "min_pairs": "40"}

    status, body = get(gate_url(report.url, endpoint=USERS, **common))
    assert (status, body["verdict"]) == (200, "pass"), body
    assert (body["pairs"], body["mismatches"], body["rate"]) == (120, 0, 0.0)
    assert body["wilson_upper"] == round(gate.wilson_upper(0, 120), 6)

    status, body = get(gate_url(report.url, endpoint=PRODUCTS, **common))
    assert (status, body["verdict"]) == (412, "fail"), body
    assert (body["pairs"], body["mismatches"]) == (50, 16)  # ids divisible by 3 in 1..50
    assert body["reason"].startswith(PRODUCTS) and "32.00%" in body["reason"]

    status, body = get(gate_url(report.url, **common))  # every endpoint: the worst verdict
    assert (status, body["verdict"], body["pairs"]) == (412, "fail", 170)
    assert {e["endpoint"]: e["verdict"] for e in body["endpoints"]} == {USERS: "pass",
                                                                        PRODUCTS: "fail"}

    # Flagger's webhook payload, parameters in metadata (strings)
    flagger = {"name": "shop", "namespace": "prod", "phase": "Progressing",
               "metadata": {"endpoint": USERS, **common}}
    status, body = get(report.url + "/api/v1/gate", json.dumps(flagger).encode())
    assert (status, body["verdict"]) == (200, "pass")
    flagger["metadata"]["endpoint"] = PRODUCTS
    status, body = get(report.url + "/api/v1/gate", json.dumps(flagger).encode())
    assert (status, body["verdict"]) == (412, "fail")

    # more pairs asked than seen: inconclusive, 425 unless mapped
    status, body = get(gate_url(report.url, endpoint=USERS, max_mismatch_rate="0.05",
                                min_pairs="500"))
    assert (status, body["verdict"]) == (425, "inconclusive")
    assert "fewer than min_pairs=500" in body["reason"]
    status, body = get(gate_url(report.url, endpoint=USERS, min_pairs="500", inconclusive="pass"))
    assert (status, body["verdict"]) == (200, "inconclusive")

    # the CLI: exit 0 pass, 1 fail, 2 inconclusive
    base = ["gate", "--redis-url", redis_url, "--window", "5m", "--max-mismatch-rate", "0.05",
            "--min-pairs", "40"]
    assert cli.main([*base, "--endpoint", USERS]) == 0
    assert cli.main([*base, "--endpoint", PRODUCTS]) == 1
    assert cli.main(base) == 1
    assert cli.main([*base[:-1], "500", "--endpoint", USERS]) == 2


def test_gate_is_inconclusive_before_pairs_are_compared(serve, r, redis_url):
    cfg = demo_helpers.traffic(serve, r, redis_url, users=30, products=0, compare=False)
    report = serve(server.build_app(cfg))
    status, body = get(gate_url(report.url, endpoint=USERS, min_pairs="10"))
    assert (status, body["verdict"], body["pairs"]) == (425, "inconclusive", 0)
    demo_helpers.run_worker_burst(cfg)
    status, body = get(gate_url(report.url, endpoint=USERS, min_pairs="10"))
    assert (body["verdict"], body["pairs"]) == ("inconclusive", 30)  # 0/30: upper 10.4 % > 1 %
    assert "more pairs needed" in body["reason"]


def test_bad_parameters_get_400_naming_them(serve, r, redis_url, make_config):
    report = serve(server.build_app(make_config()))
    status, body = get(gate_url(report.url, max_mismatch_rate="lots"))
    assert status == 400 and body["parameter"] == "max_mismatch_rate"
    status, body = get(report.url + "/api/v1/gate", b"not json")
    assert status == 400 and body["parameter"] == "body"
    status, body = get(report.url + "/api/v1/gate", b'{"metadata": {"window": "-5m"}}')
    assert status == 400 and body["parameter"] == "window"
