"""The built-in notifier POSTs one alert per episode and one resolution to a real webhook
receiver, with its state in the real Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import aiohttp
import pytest
from aiohttp import web

from diffsvc.core.models import Comparison, FieldDiff
from diffsvc.report import notifier, server
from diffsvc.storage import store
from tests.conftest import CRITERIA

ENDPOINT = "GET /api/products/{id}"


def receiver() -> tuple[web.Application, list[dict], list[int]]:
    received: list[dict] = []
    failures = [0]  # answer 500 this many times first

    async def hook(request: web.Request) -> web.Response:
        if failures[0]:
            failures[0] -= 1
            return web.Response(status=500)
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    return app, received, failures


def record(r, mismatches: int, matches: int) -> None:
    comps = [Comparison(uuid.uuid4().hex, ENDPOINT, "mismatch",
                        diffs=[FieldDiff("$.price", "changed", 1, 2)])
             for _ in range(mismatches)]
    comps += [Comparison(uuid.uuid4().hex, ENDPOINT, "match") for _ in range(matches)]
    store.record_comparisons(r, comps, 3600)


def tick(cfg, r) -> list[notifier.Alert]:
    async def once() -> list[notifier.Alert]:
        async with aiohttp.ClientSession() as session:
            return await notifier.Notifier(cfg, r, session).tick()

    return asyncio.run(once())


def test_one_alert_per_episode_then_its_resolution(serve, r, make_config):
    app, received, _ = receiver()
    hook = serve(app)
    cfg = make_config(notify_webhook_url=hook.url + "/hook", notify_threshold=0.1,
                      notify_min_pairs=20, notify_window=300.0)
    record(r, 5, 10)                       # 15 pairs: too few to judge
    assert tick(cfg, r) == [] and received == []
    record(r, 10, 5)                       # 15/30 = 50 %: fires
    assert [a.status for a in tick(cfg, r)] == ["firing"]
    record(r, 5, 0)                        # still above: same episode, nothing new
    assert tick(cfg, r) == [] and tick(cfg, r) == []
    # a second notifier (another report server) does not repeat it
    assert tick(dataclasses.replace(cfg), r) == []
    record(r, 0, 400)                      # 20/435 = 4.6 %: resolved, once
    assert [a.status for a in tick(cfg, r)] == ["resolved"]
    assert tick(cfg, r) == []
    assert [(m["status"], m["endpoint"]) for m in received] == [("firing", ENDPOINT),
                                                                  ("resolved", ENDPOINT)]
    firing = received[0]
    assert (firing["pairs"], firing["mismatches"], firing["rate"]) == (30, 15, 0.5)
    assert firing["source"] == "diffsvc" and "50.00%" in firing["text"]
    assert received[1]["rate"] == round(20 / 435, 6)


def test_a_failed_delivery_is_retried_at_the_next_evaluation(serve, r, make_config, monkeypatch):
    monkeypatch.setattr(notifier, "DELIVERY_ATTEMPTS", 1)
    app, received, failures = receiver()
    hook = serve(app)
    cfg = make_config(notify_webhook_url=hook.url + "/hook", notify_threshold=0.1,
                      notify_min_pairs=10)
    record(r, 10, 10)
    failures[0] = 1
    assert tick(cfg, r) == [] and received == []
    assert [a.status for a in tick(cfg, r)] == ["firing"]
    assert len(received) == 1


def test_the_report_server_runs_the_notifier(serve, r, make_config):
    app, received, _ = receiver()
    hook = serve(app)
    record(r, 30, 30)
    cfg = make_config(notify_webhook_url=hook.url + "/hook", notify_threshold=0.2,
                      notify_min_pairs=10, notify_interval=0.1)
    serve(server.build_app(cfg))
    deadline = time.monotonic() + 15
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["status"] for m in received] == ["firing"]


@pytest.mark.parametrize("counts,open_,expected", [
    ({"e": {"matches": 90, "mismatches": 10}}, set(), []),           # 10 %: at threshold
    ({"e": {"matches": 89, "mismatches": 11}}, set(), ["firing"]),
    ({"e": {"matches": 89, "mismatches": 11}}, {"e"}, []),
    ({"e": {"matches": 90, "mismatches": 10}}, {"e"}, ["resolved"]),
    ({"e": {"matches": 5, "mismatches": 0}}, {"e"}, []),              # too few to resolve
    ({}, {"e"}, []),                                                  # no traffic: stays open
    ({"e": {"cand_errors": 60, "error:connect": 60}}, set(), ["firing"]),  # a dead candidate
    ({"e": {"matches": 100}}, {"e"}, ["resolved"]),
])
def test_transitions(counts, open_, expected):
    alerts = notifier.transitions(counts, open_, 0.1, 50, "5m", 0.0, CRITERIA)
    assert [a.status for a in alerts] == expected
