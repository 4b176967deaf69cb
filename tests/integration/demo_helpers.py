"""The demo's two sample upstreams (prod, and candidate with its price regression) served on
127.0.0.1, the real gateway in front of them, and a burst worker: shared by the metrics,
gate and Prometheus tests."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

from redis import Redis

from diffsvc import config, gateway
from diffsvc.config import Config
from diffsvc.demo import run as demo_run
from diffsvc.demo import upstream as demo_upstream
from diffsvc.report import data
from diffsvc.storage import store
from tests.conftest import CRITERIA, run_worker_burst

USERS = "GET /api/users/{id}"
PRODUCTS = "GET /api/products/{id}"


def start(serve: Callable[..., Any], redis_url: str) -> tuple[Config, str]:
    """Demo upstreams and a gateway; returns the config and the gateway's URL."""
    prod = serve(demo_upstream.build_app("prod"))
    cand = serve(demo_upstream.build_app("candidate"))
    cfg = config.load(overrides={"redis_url": redis_url, "primary": prod.url,
                                 "candidate": cand.url, "flush_interval": "10ms",
                                 "ignore": demo_run.DEMO_IGNORE})
    gw = serve(gateway.build_app(cfg))
    return cfg, gw.url


def send(gw_url: str, paths: list[str]) -> None:
    for path in paths:
        with urllib.request.urlopen(gw_url + path) as resp:
            resp.read()


def wait_captured(r: Redis, n: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store.gateway_counters(r).get("captured", 0) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} exchanges captured: {store.gateway_counters(r)}")


def traffic(serve: Callable[..., Any], r: Redis, redis_url: str, users: int = 120,
            products: int = 50, compare: bool = True) -> Config:
    """`users` clean user reads and `products` product reads (ids 1..50: a third of them,
    the discounted ones, have a wrong price on the candidate), compared by a burst worker."""
    cfg, gw_url = start(serve, redis_url)
    send(gw_url, [f"/api/users/{i}" for i in range(1, users + 1)]
         + [f"/api/products/{(i - 1) % 50 + 1}" for i in range(1, products + 1)])
    wait_captured(r, users + products)
    if compare:
        run_worker_burst(cfg)
    return cfg


def report_summary(r: Redis) -> dict[str, tuple[int, float, list[str]]]:
    """Per endpoint: pairs, mismatch rate and differing paths, to compare two runs' reports."""
    return {e["endpoint"]: (e["pairs"], e["mismatch_rate"], sorted(f["path"] for f in e["fields"]))
            for e in data.build(r, CRITERIA).to_dict()["endpoints"]}
