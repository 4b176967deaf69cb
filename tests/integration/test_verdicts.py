"""Statistics decide regressions, on real upstreams and a real Redis: one odd answer in 80
pairs is not significant, 20 in 80 are a regression; noise is keyed by (path, kind), so a
field production changes on every call and the candidate removes is a regression."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from xml.etree import ElementTree as ET

import yaml
from aiohttp import web
from redis import Redis

from diffsvc import gateway
from diffsvc.config import Config
from diffsvc.report import data, formats, gate
from tests.conftest import CRITERIA, ServedApp, run_worker_burst
from tests.integration.demo_helpers import send, wait_captured

PAIRS = 80


def items(role: str) -> web.Application:
    """/rare/{id}: the candidate answers one id differently; /often/{id}: one in four;
    /timed/{id}: production's query_ms changes on every call, the candidate drops it;
    /still/{id}: query_ms changes everywhere, the candidate keeps it."""

    async def rare(request: web.Request) -> web.Response:
        i = int(request.match_info["id"])
        return web.json_response({"id": i, "price": 11 if role == "candidate" and i == 7 else 10})

    async def often(request: web.Request) -> web.Response:
        i = int(request.match_info["id"])
        odd = role == "candidate" and i % 4 == 0
        return web.json_response({"id": i, "price": 11 if odd else 10})

    async def timed(request: web.Request) -> web.Response:
        body: dict[str, object] = {"id": int(request.match_info["id"])}
        if role != "candidate" or request.path.startswith("/still"):
            body["query_ms"] = random.randint(1, 10_000)
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/rare/{id}", rare)
    app.router.add_get("/often/{id}", often)
    app.router.add_get("/timed/{id}", timed)
    app.router.add_get("/still/{id}", timed)
    return app


def compared(serve: Callable[[web.Application], ServedApp], make_config: Callable[..., Config],
             r: Redis, prefixes: list[str], secondary: bool) -> None:
    urls = {role: serve(items(role)).url for role in ("prod", "secondary", "candidate")}
    cfg = make_config(primary=urls["prod"], candidate=urls["candidate"],
                      secondary=urls["secondary"] if secondary else None)
    gw = serve(gateway.build_app(cfg))
    send(gw.url, [f"/{p}/{i}" for p in prefixes for i in range(PAIRS)])
    wait_captured(r, PAIRS * len(prefixes))
    run_worker_burst(cfg)


def test_one_odd_answer_in_80_is_not_significant_20_are_a_regression(serve, make_config,
                                                                      r: Redis) -> None:
    compared(serve, make_config, r, ["rare", "often"], secondary=False)
    report = data.build(r, CRITERIA)
    by_name = {e.endpoint: e for e in report.endpoints}
    rare, often = by_name["GET /rare/{id}"], by_name["GET /often/{id}"]
    [rare_price], [often_price] = rare.fields, often.fields
    assert (rare_price.mismatches, rare_price.judged.label) == (1, "not_significant")
    assert rare_price.judged.p_value > 0.05
    assert (often_price.mismatches, often_price.judged.label) == (20, "regression")
    assert often_price.judged.p_value < 1e-9
    assert often_price.judged.effect_low > 0.15  # 25 % more, and at least 15 % with 95 %
    assert (rare.classification, often.classification) == ("not_significant", "regression")
    # every gate surface reads the same decision: only the regression fails
    assert rare.failure(0.0) is None
    assert "mismatch rate 25.00% (20/80)" in (often.failure(0.0) or "")
    junit = ET.fromstring(formats.as_junit(report, 0.0))
    assert [c.get("name") for c in junit.iter("testcase") if c.find("failure") is not None] == \
        ["GET /often/{id}"]


def test_a_field_volatile_in_production_and_removed_by_the_candidate_is_a_regression(
        serve, make_config, r: Redis) -> None:
    compared(serve, make_config, r, ["timed", "still"], secondary=True)
    report = data.build(r, CRITERIA)
    by_name = {e.endpoint: e for e in report.endpoints}
    timed, still = by_name["GET /timed/{id}"], by_name["GET /still/{id}"]
    [removed] = timed.fields
    assert (removed.path, removed.kind, removed.mismatches) == ("$.query_ms", "removed", PAIRS)
    assert removed.noise == 0 and removed.judged.label == "regression"
    assert timed.mismatches == PAIRS and timed.classification == "regression"
    # the same field changing on the candidate as on production is noise, not counted
    [changed] = still.fields
    assert (changed.kind, changed.judged.label) == ("changed", "noise")
    assert changed.noise >= PAIRS - 2  # two random values may meet
    assert still.mismatches == 0 and still.failure(0.0) is None


def shop(role: str) -> web.Application:
    """Prices rise with the id; the candidate charges 10 % more. `served_at` changes on every
    call, in production too."""

    async def product(request: web.Request) -> web.Response:
        i = int(request.match_info["id"])
        price = 10.0 + i
        return web.json_response({"id": i, "price": round(price * 1.1, 6) if role == "candidate"
                                  else price, "served_at": time.time()})

    async def timed(request: web.Request) -> web.Response:
        body: dict[str, object] = {"id": int(request.match_info["id"])}
        if role != "candidate":
            body["query_ms"] = random.randint(1, 10_000)
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/products/{id}", product)
    app.router.add_get("/timed/{id}", timed)
    return app


def test_ascending_ids_and_ten_percent_more_is_a_systematic_regression_never_suggested(
        serve, make_config, r: Redis, redis_url: str) -> None:
    prod, cand = serve(shop("prod")), serve(shop("candidate"))
    cfg = make_config(primary=prod.url, candidate=cand.url)
    gw = serve(gateway.build_app(cfg))
    ids = list(range(1, 41)) + list(range(1, 11))  # ascending, then ten requests again
    send(gw.url, [f"/products/{i}" for i in ids])
    wait_captured(r, len(ids))
    run_worker_burst(cfg)
    [entry] = data.build(r, CRITERIA).endpoints
    fields = {f.path: f for f in entry.fields}
    assert fields["$.price"].judged.label == "regression" and fields["$.price"].noise == 0
    assert [s.path for s in entry.suspected_noise] == ["$.served_at"]  # production's evidence
    [served_at] = entry.suspected_noise
    assert served_at.reason == "timestamp" and "same request differently 10 times" in \
        served_at.evidence
    assert {"path": "$.price", "relation": "candidate = primary × 1.1", "seen": 20} in \
        entry.systematic
    assert "systematic: $.price: candidate = primary × 1.1" in formats.as_table(
        data.build(r, CRITERIA))
    done = subprocess.run([sys.executable, "-m", "diffsvc", "rules", "suggest", "--redis-url",
                           redis_url], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout) == {
        "routes": [{"match": "GET /products/{id}", "ignore": {"fields": ["$.served_at"]}}]}


def test_without_a_secondary_learned_volatility_never_excuses_a_removal(
        serve, make_config, r: Redis) -> None:
    prod, cand = serve(shop("prod")), serve(shop("candidate"))
    cfg = make_config(primary=prod.url, candidate=cand.url)
    gw = serve(gateway.build_app(cfg))
    send(gw.url, [f"/timed/{i % 10}" for i in range(PAIRS)])  # each request eight times
    wait_captured(r, PAIRS)
    run_worker_burst(cfg)
    [entry] = data.build(r, CRITERIA).endpoints
    [removed] = entry.fields
    assert (removed.path, removed.kind, removed.judged.label) == ("$.query_ms", "removed",
                                                                  "regression")
    assert entry.suspected_noise == () and entry.failure(0.0)


def test_kayenta_style_outcome_and_score(serve, make_config, r: Redis) -> None:
    compared(serve, make_config, r, ["rare", "often"], secondary=False)
    by_name = {e.endpoint: e for e in data.build(r, CRITERIA).endpoints}
    rare, often = by_name["GET /rare/{id}"], by_name["GET /often/{id}"]
    assert (rare.outcome, rare.score) == ("marginal", 98.8)   # 79 of 80 the same
    assert (often.outcome, often.score) == ("fail", 75.0)


def test_the_gate_judges_a_window_as_the_report_judges_its_fields(serve, make_config,
                                                                 r: Redis) -> None:
    """No secondary: production answers the same request with a new `served_at` every time,
    so the report calls it noise; the gate over the window agrees instead of failing on it,
    and still fails the price regression of another endpoint."""
    prod, cand = serve(shop("prod")), serve(shop("same"))
    cfg = make_config(primary=prod.url, candidate=cand.url)
    gw = serve(gateway.build_app(cfg))
    send(gw.url, [f"/products/{i % 5}" for i in range(60)])
    wait_captured(r, 60)
    run_worker_burst(cfg)
    [entry] = data.build(r, CRITERIA).endpoints
    assert entry.raw_mismatches == 60 and entry.mismatches == 0
    assert entry.classification == "noise" and entry.failure(0.0) is None
    params = gate.GateParams(max_mismatch_rate=0.0, min_pairs=10)
    result = gate.run(r, params, CRITERIA)
    assert result.verdict != "fail", result.reason
    assert (result.mismatches, result.endpoints[0].classification) == (0, "not_significant")
    # without the report's classification the raw window would have failed
    assert gate.evaluate(gate.window_counts(r, 5), params, CRITERIA).verdict == "fail"
