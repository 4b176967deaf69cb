"""Noise measured with a secondary, through the whole path: gateway (primary, secondary,
candidate) → Redis → worker → report with raw, noise and effective figures and groups."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from diffsvc import config
from diffsvc.core.models import Comparison, FieldDiff
from diffsvc.report import data, formats, metrics, summary
from diffsvc.report.noise import Margins
from diffsvc.storage import quality as diffq
from diffsvc.storage import store
from tests.conftest import CRITERIA, ServedApp, run_worker_burst
from tests.integration.test_gateway import counters, fetch, gateway_for, wait_until

N = 40  # requests; the candidate changes the price of every 4th item


def service(role: str) -> web.Application:
    async def item(request: web.Request) -> web.Response:
        iid = int(request.match_info["id"])
        price = 10 + iid + (1 if role == "candidate" and iid % 4 == 0 else 0)
        return web.json_response({"id": iid, "price": price, "token": uuid.uuid4().hex})

    app = web.Application()
    app.router.add_get("/items/{id}", item)
    return app


def run(serve: Callable[[web.Application], ServedApp], redis_url: str) -> config.Config:
    prod, second, cand = (serve(service(role)) for role in ("primary", "secondary", "candidate"))
    cfg = config.load(env={}, overrides={"redis_url": redis_url, "flush_interval": "10ms",
                                         "primary": prod.url, "secondary": second.url,
                                         "candidate": cand.url})
    gw = gateway_for(serve, cfg)
    for i in range(N):
        assert fetch(gw.url, f"/items/{i}")[0] == 200
    wait_until(lambda: counters(gw).get("captured", 0) >= N, f"{N} captured")
    run_worker_burst(cfg)
    return cfg


def test_report_shows_raw_noise_and_effective(serve, redis_url: str, r: Redis) -> None:
    run(serve, redis_url)
    [entry] = data.build(r, CRITERIA).to_dict()["endpoints"]
    changed = N // 4
    assert entry["raw"] == {"matches": 0, "mismatches": N, "mismatch_rate": 1.0}
    assert entry["noise"]["pairs"] == N and entry["noise"]["mismatches"] == N
    assert (entry["mismatches"], entry["matches"]) == (changed, N - changed)
    assert entry["mismatch_rate"] == changed / N
    assert entry["suppressed_as_noise"] == N - changed
    fields = {f["path"]: f for f in entry["fields"]}
    assert fields["$.price"]["regression"] is True and fields["$.price"]["noise"] == 0
    assert fields["$.token"]["regression"] is False and fields["$.token"]["noise"] == N
    assert entry["fields"][0]["path"] == "$.price"  # regressions first
    groups = {tuple(d["path"] for d in g["signature"]): g for g in entry["groups"]}
    assert groups[("$.token",)]["count"] == N - changed and groups[("$.token",)]["noise"]
    price = groups[("$.price", "$.token")]
    assert price["count"] == changed and not price["noise"]
    assert 0 < len(price["samples"]) <= 5
    for sample in price["samples"]:
        comparison = store.load_comparison(r, sample)
        assert comparison and "$.price" in comparison.paths
    table = formats.as_table(data.build(r, CRITERIA))
    assert "RAW" in table and "NOISE" in table and "= noise, not counted" in table
    markdown = formats.as_markdown(data.build(r, CRITERIA))  # a PR comment says it too
    assert f"`$.price` ({changed}), `$.token` ({N}, noise)" in markdown
    assert "group x10: $.price changed, $.token changed" in table


def test_metrics_count_the_mismatches_the_report_counts(serve, redis_url: str,
                                                       r: Redis) -> None:
    """/metrics (and so the Prometheus alert on its ratio) never counts noise: a volatile
    token on every answer is 40 raw mismatches but 10 effective ones, as in the report."""
    run(serve, redis_url)
    [entry] = data.build(r, CRITERIA).to_dict()["endpoints"]
    samples = {(s.name, tuple(s.labels.values())): s.value
               for fam in text_string_to_metric_families(metrics.render(r, CRITERIA).decode())
               for s in fam.samples}
    endpoint = (entry["endpoint"],)
    assert samples[("diffsvc_mismatches_total", endpoint)] == entry["mismatches"] == N // 4
    assert samples[("diffsvc_comparisons_total", endpoint)] == N


def test_the_overview_counts_the_mismatches_the_report_counts(serve, redis_url: str,
                                                              r: Redis) -> None:
    """The web UI's overview (summary API) colours and sorts by the effective rate: noise on
    every answer does not paint the endpoint red at 100% while the report says 25%."""
    run(serve, redis_url)
    [entry] = data.build(r, CRITERIA).to_dict()["endpoints"]
    window = summary.parse_window({"window": "15m"})
    [row] = summary.build(r, CRITERIA, window)["endpoints"]
    assert (row["mismatches"], row["matches"]) == (entry["mismatches"], entry["matches"])
    assert row["mismatch_rate"] == entry["mismatch_rate"] == 0.25
    assert row["raw_mismatches"] == N and row["spark"][-1] == 0.25
    assert row["classification"] == entry["classification"] == "regression"


def test_margins_are_configurable(serve, redis_url: str, r: Redis) -> None:
    run(serve, redis_url)
    [entry] = data.build(r, dataclasses.replace(CRITERIA, margins=Margins(0.25, 0.5))).to_dict()["endpoints"]
    assert entry["mismatches"] == 0 and entry["raw"]["mismatches"] == N
    assert not any(f["regression"] for f in entry["fields"])


def test_noise_and_groups_are_counted_once_per_exchange(r: Redis) -> None:
    c = Comparison("ex1", "GET /x", "mismatch", [FieldDiff("$.a", "changed", 1, 2)])
    noise = [FieldDiff("$.a", "changed", 1, 3)]
    assert store.record_comparisons(r, [c], 60, noise={"ex1": noise}) == 1
    assert store.record_comparisons(r, [c], 60, noise={"ex1": noise}) == 0
    q = diffq.quality_stats(r, ["GET /x"])["GET /x"]
    assert (q["noise_pairs"], q["noise_mismatches"], q["noise_fields"]) == (1, 1, {"$.a": 1})
    assert [n for _, n in q["groups"].values()] == [1]


def test_the_summary_noise_is_taken_over_its_window(r: Redis) -> None:
    import time

    from diffsvc.report import summary

    now = time.time()
    diff = [FieldDiff("$.a", "changed", 1, 2)]
    old = Comparison("old", "GET /x", "mismatch", diff, compared_at=now - 3600)
    new = Comparison("new", "GET /x", "match", compared_at=now)
    store.record_comparisons(r, [old, new], 7200, noise={"old": diff, "new": []})

    def noise(seconds: float) -> tuple[int, int]:
        [entry] = summary.build(r, CRITERIA, summary.Window(now - seconds, now + 1))["endpoints"]
        return entry["noise"], entry["noise_pairs"]

    assert noise(900) == (0, 1)  # the last 15 minutes: one pair with a secondary, no noise
    assert noise(7200) == (1, 2)  # two hours: the old noisy pair too
