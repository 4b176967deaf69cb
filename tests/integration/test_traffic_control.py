"""Traffic control through the real gateway: consistent sampling by a header (all or none
of each key's requests, about 10% of keys) and the shadow rate cap under 10× the load."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from diffsvc import gateway
from diffsvc.storage import store


def counting_app(seen: Counter[str]) -> web.Application:
    async def any_path(request: web.Request) -> web.Response:
        seen[request.headers.get("X-User-Id", "-")] += 1
        seen["_tenant:" + request.headers.get("X-Tenant", "-")] += 1
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_path)
    return app


async def _load(url: str, targets: list[tuple[str, dict[str, str]]], rate: float) -> float:
    """Send at `rate` per second (0: 32 at once); the seconds it took."""
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        gate = asyncio.Semaphore(64)

        async def one(i: int, path: str, headers: dict[str, str]) -> None:
            if rate:
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            async with gate, session.get(url + path, headers=headers) as resp:
                assert resp.status == 200
                await resp.read()

        await asyncio.gather(*(one(i, p, h) for i, (p, h) in enumerate(targets)))
        return time.monotonic() - started


def _wait_accounted(r: Any, outcomes: tuple[str, ...], total: int) -> dict[str, int]:
    """Shadow calls finish after the client's answer: wait until the gateway's counters
    account for all `total` requests (each one captured or skipped for a reason)."""
    deadline = time.monotonic() + 15
    while True:
        counters = store.gateway_counters(r)
        if sum(counters.get(k, 0) for k in outcomes) >= total:
            return counters
        assert time.monotonic() < deadline, counters
        time.sleep(0.05)


def test_consistent_sample_by_header_is_all_or_none_per_key(serve, r, make_config):
    prod_seen: Counter[str] = Counter()
    cand_seen: Counter[str] = Counter()
    prod = serve(counting_app(prod_seen))
    cand = serve(counting_app(cand_seen))
    cfg = make_config(primary=prod.url, candidate=cand.url, sample_rate=0.1,
                      sampling_key="header:X-User-Id",
                      routes=[{"match": "GET /api/{x}", "name": "GET /api/{x}", "sample_rate": 1.0,
                               "ignore": {"fields": [], "headers": []}, "ignore_order": [],
                               "tolerance": [], "only": [], "shadow_headers": {"X-Tenant": "test"}}])
    gw = serve(gateway.build_app(cfg))
    keys = [f"user-{k}" for k in range(2000)]
    targets = [(f"/api/{n}", {"X-User-Id": key}) for n in ("a", "b") for key in keys]
    asyncio.run(_load(gw.url, targets, 0))
    counters = _wait_accounted(r, ("captured", "skipped_sample"), len(targets))
    assert counters["captured"] == cand_seen.total() // 2  # _tenant:* counts each call too
    assert all(prod_seen[key] == 2 for key in keys)
    per_key = Counter(cand_seen[key] for key in keys)
    assert set(per_key) <= {0, 2}, per_key  # all or none of a key's requests
    share = per_key[2] / len(keys)
    print(f"\nconsistent 10% sample: {per_key[2]} of {len(keys)} keys mirrored ({share:.2%})")
    assert 0.07 <= share <= 0.13
    assert cand_seen["_tenant:test"] == 2 * per_key[2]  # the route's shadow header rewrite
    assert prod_seen["_tenant:-"] == len(targets)


def test_shadow_rate_cap_holds_under_ten_times_the_load(serve, r, make_config):
    prod_seen: Counter[str] = Counter()
    cand_seen: Counter[str] = Counter()
    prod = serve(counting_app(prod_seen))
    cand = serve(counting_app(cand_seen))
    cap, load, seconds = 20.0, 200.0, 4.0
    cfg = make_config(primary=prod.url, candidate=cand.url, shadow_rate_limit=cap)
    gw = serve(gateway.build_app(cfg))
    targets = [("/api/x", {"X-User-Id": str(i)}) for i in range(int(load * seconds))]
    took = asyncio.run(_load(gw.url, targets, load))
    counters = _wait_accounted(r, ("captured", "skipped_rate_limit"), len(targets))
    reached = sum(n for k, n in cand_seen.items() if not k.startswith("_"))
    assert reached == counters["captured"]
    allowed = cap * took
    print(f"\nrate cap {cap:g}/s under {len(targets) / took:.0f}/s offered for {took:.2f}s: "
          f"{reached} reached the candidate ({reached / took:.2f}/s, "
          f"{reached / allowed - 1:+.1%} of the cap)")
    assert prod_seen.total() // 2 == len(targets)  # every client got primary's answer
    assert len(targets) / took >= 5 * cap  # the load really was far above the cap
    assert 0.95 * allowed <= reached <= 1.05 * allowed + 2  # + the bucket's two-token burst
