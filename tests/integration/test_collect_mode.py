"""Collect mode: exchanges shipped with production's actual answers (as Envoy's and nginx's Lua
ship them: the wire format of diffsvc.gateway.collectwire) are compared like the inline
gateway's, answered 202 at once, guarded by collect.token, and bounded."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

import orjson
import pytest
from aiohttp import web

from diffsvc import gateway
from diffsvc.core.models import Reply, Request
from diffsvc.demo import upstream
from diffsvc.demo.run import DEMO_IGNORE
from diffsvc.errors import ConfigError
from diffsvc.gateway import collectwire
from diffsvc.ops import stack
from diffsvc.report import metrics
from diffsvc.storage import store
from tests.conftest import CRITERIA, DEMO_PATHS, run_worker_burst
from tests.integration.demo_helpers import report_summary, wait_captured

IGNORE = {"fields": list(DEMO_IGNORE["fields"]), "headers": []}


def post(url: str, body: bytes, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url + collectwire.EXCHANGES_PATH, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def production_exchange(prod_url: str, path: str, method: str = "GET") -> bytes:
    """What a proxy in front of prod would ship for this request."""
    with urllib.request.urlopen(urllib.request.Request(prod_url + path, method=method)) as resp:
        reply = Reply(resp.status, list(resp.headers.items()), resp.read(), 3.0)
    target, _, query = path.partition("?")
    return collectwire.encode(Request(method, target, query, [("Host", "shop.test")]), reply,
                              "10.0.0.7")


def counters_eventually(r, key: str, n: int) -> dict[str, int]:
    deadline = time.monotonic() + 10
    while (counters := store.gateway_counters(r)).get(key, 0) < n:
        assert time.monotonic() < deadline, counters
        time.sleep(0.02)
    return counters


def test_collect_report_equals_inline_report(serve, r, make_config) -> None:
    prod = serve(upstream.build_app("prod"))
    cand = serve(upstream.build_app("candidate"))
    paths = DEMO_PATHS + ["/api/users/3", "/api/products/7"]
    inline_cfg = make_config(primary=prod.url, candidate=cand.url, ignore=IGNORE)
    gw = serve(gateway.build_app(inline_cfg))
    for path in paths:
        with urllib.request.urlopen(gw.url + path) as resp:
            resp.read()
    wait_captured(r, len(paths))
    run_worker_burst(inline_cfg)
    inline = report_summary(r)
    assert any(rate > 0 for _, rate, _ in inline.values())
    r.flushall()

    # a `primary` in the same config is accepted and not called
    collect_cfg = make_config(primary="http://127.0.0.1:9", candidate=cand.url, ignore=IGNORE,
                              mode="collect")
    col = serve(gateway.build_app(collect_cfg))
    for path in paths:
        assert post(col.url, production_exchange(prod.url, path)) == (202, b"")
    wait_captured(r, len(paths))
    run_worker_burst(collect_cfg)
    assert report_summary(r) == inline
    counters = store.gateway_counters(r)
    assert counters.get("mirrored") == len(paths) and not counters.get("primary_errors")


def test_traffic_control_token_and_caps(serve, r, make_config) -> None:
    prod = serve(upstream.build_app("prod"))
    cand = serve(upstream.build_app("candidate"))
    cfg = make_config(candidate=cand.url, mode="collect", collect_token="s3cret",
                      mirror_max_body=1024, deny=["GET /api/search*"])
    col = serve(gateway.build_app(cfg))
    exchange = production_exchange(prod.url, "/api/users/1")
    assert post(col.url, exchange)[0] == 401
    assert post(col.url, exchange, "wrong")[0] == 401
    assert post(col.url, exchange, "s3cret")[0] == 202
    assert post(col.url, production_exchange(prod.url, "/api/search?q=a"), "s3cret")[0] == 202
    posted = collectwire.encode(Request("POST", "/api/users/1", "", [], b"{}"), Reply(200))
    assert post(col.url, posted, "s3cret")[0] == 202
    big = collectwire.encode(Request("PUT", "/x", "", [], b"x" * 2048), Reply(200))
    assert post(col.url, big, "s3cret")[0] == 202
    status, body = post(col.url, b'{"method": "GET", "target": "/x"}', "s3cret")
    assert status == 400 and b"status" in body
    counters = counters_eventually(r, "captured", 1)
    assert counters["mirrored"] == 1, counters
    assert counters["skipped_denied"] == 1 and counters["skipped_method"] == 1
    assert counters["skipped_body_too_large"] == 1 and counters["collect_invalid"] == 1
    assert counters["collect_unauthorized"] == 2
    exposition = metrics.render(r, CRITERIA).decode()  # what Prometheus scrapes from the report server
    assert 'diffsvc_collector_rejected_total{reason="unauthorized"} 2.0' in exposition
    assert 'diffsvc_collector_rejected_total{reason="invalid"} 1.0' in exposition
    with urllib.request.urlopen(col.url + collectwire.OPENAPI_PATH) as resp:
        assert collectwire.EXCHANGES_PATH in orjson.loads(resp.read())["paths"]


def test_answers_at_once_and_drops_beyond_max_inflight(serve, r, make_config) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(text="late")

    slow_app = web.Application()
    slow_app.router.add_get("/{tail:.*}", slow)
    cand = serve(slow_app)
    cfg = make_config(candidate=cand.url, mode="collect", max_inflight=2)
    col = serve(gateway.build_app(cfg))
    started = time.perf_counter()
    for i in range(6):
        exchange = collectwire.encode(Request("GET", f"/p/{i}"), Reply(200, [], b"ok"))
        assert post(col.url, exchange)[0] == 202
    assert time.perf_counter() - started < 0.9  # the 1 s candidate is not waited for
    counters = counters_eventually(r, "captured", 2)
    assert counters["shadow_dropped"] == 4 and counters["mirrored"] == 6


def test_token_required_beyond_loopback(make_config) -> None:
    cfg = make_config(candidate="http://127.0.0.1:9", mode="collect", listen="0.0.0.0:9000")
    with pytest.raises(ConfigError, match="collect.token"):
        gateway.build_app(cfg)


def test_up_runs_a_collector_without_primary(make_config) -> None:
    cfg = make_config(candidate="http://127.0.0.1:9", mode="collect", listen="0.0.0.0:9000")
    with pytest.raises(ConfigError, match="collect.token"):  # not "primary is required"
        stack.up(cfg)
    with pytest.raises(ConfigError, match="primary"):
        stack.up(make_config(candidate="http://127.0.0.1:9"))
