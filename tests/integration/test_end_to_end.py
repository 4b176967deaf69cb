"""Client → gateway → Redis → worker (burst) → report, on real servers and a real Redis."""

from __future__ import annotations

import time
import urllib.request

from aiohttp import web

from diffsvc import config, gateway
from diffsvc.report import data
from tests.conftest import CRITERIA, run_worker_burst
from tests.integration.demo_helpers import wait_captured


def upstream_app(email_domain: str) -> web.Application:
    async def user(request: web.Request) -> web.Response:
        uid = request.match_info["id"]
        return web.json_response({"id": int(uid), "email": f"u{uid}@{email_domain}",
                                  "request_id": str(time.perf_counter_ns())})

    app = web.Application()
    app.router.add_get("/api/users/{id}", user)
    return app


def test_changed_field_is_reported_with_its_path(serve, r, redis_url):
    prod = serve(upstream_app("example.com"))
    cand = serve(upstream_app("example.org"))
    cfg = config.load(overrides={"redis_url": redis_url, "primary": prod.url,
                                 "candidate": cand.url, "flush_interval": "10ms",
                                 "ignore": {"fields": ["$.request_id"]}})
    gw = serve(gateway.build_app(cfg))
    for uid in range(1, 21):
        with urllib.request.urlopen(f"{gw.url}/api/users/{uid}") as resp:
            assert resp.status == 200
            assert b"example.com" in resp.read()
    wait_captured(r, 20)
    run_worker_burst(cfg)
    report = data.build(r, CRITERIA).to_dict()
    [entry] = report["endpoints"]
    assert entry["endpoint"] == "GET /api/users/{id}"
    assert (entry["pairs"], entry["mismatches"], entry["mismatch_rate"]) == (20, 20, 1.0)
    assert [{k: f[k] for k in ("path", "mismatches", "rate")} for f in entry["fields"]] == \
        [{"path": "$.email", "mismatches": 20, "rate": 1.0}]


def test_percent_encoded_query_and_path_reach_primary_as_sent(serve, r, redis_url):
    seen: list[str] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        return web.Response(text=request.raw_path)

    def echo_app() -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", echo)
        return app

    prod, cand = serve(echo_app()), serve(echo_app())
    cfg = config.load(overrides={"redis_url": redis_url, "primary": prod.url,
                                 "candidate": cand.url})
    gw = serve(gateway.build_app(cfg))
    target = "/search/a%2Fb?q=red%20hat&x=%C3%A9"
    with urllib.request.urlopen(gw.url + target) as resp:
        assert resp.status == 200
        assert resp.read().decode() == target
    assert target in seen


def test_a_header_rule_added_from_the_ui_stops_new_header_mismatches(serve, r, redis_url):
    from diffsvc.storage import rulestore

    def build_app(build: str) -> web.Application:
        async def any_path(request: web.Request) -> web.Response:
            return web.json_response({"ok": True}, headers={"X-Build": build})

        app = web.Application()
        app.router.add_get("/api/ping", any_path)
        return app

    prod, cand = serve(build_app("41")), serve(build_app("42"))
    cfg = config.load(overrides={"redis_url": redis_url, "primary": prod.url,
                                 "candidate": cand.url, "flush_interval": "10ms"})
    gw = serve(gateway.build_app(cfg))

    def send(n: int, total: int) -> dict:
        for _ in range(n):
            with urllib.request.urlopen(f"{gw.url}/api/ping") as resp:
                assert resp.headers["X-Build"] == "41"
        wait_captured(r, total)
        run_worker_burst(cfg)
        [entry] = data.build(r, CRITERIA).to_dict()["endpoints"]
        return entry

    entry = send(10, 10)
    assert [{k: f[k] for k in ("path", "mismatches", "rate")} for f in entry["fields"]] == \
        [{"path": "header.x-build", "mismatches": 10, "rate": 1.0}]
    rulestore.add(r, entry["fields"][0]["path"], entry["endpoint"])  # what the UI button sends
    entry = send(10, 20)
    assert (entry["pairs"], entry["mismatches"]) == (20, 10)
