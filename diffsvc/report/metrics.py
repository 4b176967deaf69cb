"""Prometheus metrics, read from Redis at scrape time.

Workers fork and gateways are many, so nothing is counted in this process: a custom
collector reads the counters every process keeps in Redis (one pipelined round trip per
scrape) and exposes them under Prometheus names. `add_routes(app, redis)` serves them on
`GET /metrics` of any aiohttp application (the report server)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from redis import Redis

from diffsvc.config.appkey import CONFIG
from diffsvc.core import histograms as promhist
from diffsvc.report import data
from diffsvc.report.appkeys import REDIS
from diffsvc.report.verdict import Criteria
from diffsvc.storage import counters
from diffsvc.storage import quality as diffq
from diffsvc.storage.counters import Snapshot

# The classic text format every Prometheus 2.x parses (what generate_latest writes).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER_PATH = "other"
NOT_CANDIDATE = "not_candidate"  # the kind label of errors not held against the candidate
DEFAULT_TOP_PATHS = 10

# Gateway counter hash fields -> (metric, labels). Every field is flushed by the gateway.
COLLECT_REJECTIONS = ("unauthorized", "invalid")  # gateway --mode collect: bad token, bad body
SHADOW_OUTCOMES = {"shadow_ok": "ok", "shadow_error": "error", "shadow_cancelled": "cancelled"}

# The names this module exports (the dashboards and rules may reference only these).
METRIC_NAMES = (
    "diffsvc_comparisons_total", "diffsvc_mismatches_total", "diffsvc_errors_total",
    "diffsvc_noise_total", "diffsvc_field_mismatches_total", "diffsvc_gateway_requests_total",
    "diffsvc_shadow_calls_total", "diffsvc_shadow_dropped_total",
    "diffsvc_capture_failures_total", "diffsvc_collector_rejected_total",
    "diffsvc_upstream_latency_seconds", "diffsvc_queue_depth",
    "diffsvc_comparison_duration_seconds", "diffsvc_endpoints",
)


def top_paths(counts: Mapping[str, int], n: int) -> list[tuple[str, int]]:
    """The `n` paths with the most mismatches, the rest summed as path="other".

    Which paths are "top" can change between scrapes; the sum over all paths of an endpoint
    (and so every rate built on it) stays right, which is what bounded cardinality costs."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    out = ranked[:n]
    rest = sum(v for _, v in ranked[n:])
    if rest:
        out.append((OTHER_PATH, rest))
    return out


def families(snap: Snapshot, top_n: int = DEFAULT_TOP_PATHS,
             effective: Mapping[str, int] | None = None) -> Iterator[Metric]:
    """The metric families of one snapshot (pure: tested without Redis); `effective`: the
    report's mismatches per endpoint (noise excluded), else the raw ones."""
    shown = {ep: dict(t, mismatches=effective.get(ep, t.get("mismatches", 0)))
             for ep, t in snap.totals.items()} if effective is not None else snap.totals
    per_endpoint = {
        "comparisons": ("pairs", "Shadow pairs compared, by endpoint (every verdict)"),
        "mismatches": ("mismatches", "Pairs whose responses differed after ignore rules, "
                                     "as the report counts them (noise excluded; it can step "
                                     "down when a field turns out to be noise)"),
        "noise": ("noise_mismatches", "Pairs whose primary and secondary answers differed "
                                      "(noise; counted when a secondary is configured)"),
    }
    for metric, (hash_field, doc) in per_endpoint.items():
        fam = CounterMetricFamily(f"diffsvc_{metric}", doc, labels=["endpoint"])
        for endpoint, counts in shown.items():
            fam.add_metric([endpoint], counts.get(hash_field, 0))
        yield fam
    fam = CounterMetricFamily("diffsvc_errors", "Pairs that could not be compared, by kind: "
                              "the candidate's failures where primary answered (connect, "
                              "timeout, reset, tls, protocol, too_large, undecodable, other), "
                              f"and kind=\"{NOT_CANDIDATE}\" for the rest (primary failed)",
                              labels=["endpoint", "kind"])
    for endpoint, totals in snap.totals.items():
        kinds = diffq.error_kinds(totals)
        for kind, n in sorted(kinds.items()):
            fam.add_metric([endpoint, kind], n)
        rest = totals.get("errors", 0) - sum(kinds.values())
        if rest or not kinds:
            fam.add_metric([endpoint, NOT_CANDIDATE], max(0, rest))
    yield fam
    fam = CounterMetricFamily("diffsvc_field_mismatches", "Mismatches by field (JSONPath), the "
                              f"top {top_n} per endpoint, the rest as path=\"{OTHER_PATH}\"",
                              labels=["endpoint", "path"])
    for endpoint, counts in snap.fields.items():
        for path, n in top_paths(counts, top_n):
            fam.add_metric([endpoint, path], n)
    yield fam
    gauge = GaugeMetricFamily("diffsvc_endpoints", "Endpoints with comparisons")
    gauge.add_metric([], len(snap.totals))
    yield gauge

    gw = snap.gateway
    yield CounterMetricFamily("diffsvc_gateway_requests", "Client requests the gateways served",
                              value=gw.get("requests", 0))
    fam = CounterMetricFamily("diffsvc_shadow_calls", "Shadow calls to candidate/secondary, by "
                              "outcome", labels=["outcome"])
    for name, outcome in SHADOW_OUTCOMES.items():
        fam.add_metric([outcome], gw.get(name, 0))
    yield fam
    yield CounterMetricFamily("diffsvc_shadow_dropped", "Exchanges not mirrored because "
                              "max_inflight shadow calls were already running",
                              value=gw.get("shadow_dropped", 0))
    fam = CounterMetricFamily("diffsvc_collector_rejected", "Exchanges a proxy shipped that the "
                              "collector refused, by reason", labels=["reason"])
    for reason in COLLECT_REJECTIONS:
        fam.add_metric([reason], gw.get(f"collect_{reason}", 0))
    yield fam
    yield CounterMetricFamily("diffsvc_capture_failures", "Exchanges lost because they could not "
                              "be written to Redis (or the capture buffer was full)",
                              value=gw.get("capture_failed", 0) + gw.get("capture_dropped", 0))
    hist = HistogramMetricFamily("diffsvc_upstream_latency_seconds", "Latency of successful "
                                 "upstream calls made by the gateway", labels=["upstream"])
    for upstream in promhist.UPSTREAMS:
        latency = promhist.LATENCY[upstream]
        buckets = latency.cumulative(gw)
        if upstream != "secondary" or buckets[-1][1]:
            hist.add_metric([upstream], buckets, sum_value=latency.sum_seconds(gw))
    yield hist

    depth = GaugeMetricFamily("diffsvc_queue_depth", "Comparison jobs (batches) waiting in the "
                              "queue")
    depth.add_metric([], snap.queue_depth)
    yield depth
    hist = HistogramMetricFamily("diffsvc_comparison_duration_seconds", "Time a worker spent "
                                 "comparing one pair")
    hist.add_metric([], promhist.DURATION.cumulative(snap.worker),
                    sum_value=promhist.DURATION.sum_seconds(snap.worker))
    yield hist


class RedisCollector(Collector):
    """Reads the counters from Redis at every scrape."""

    def __init__(self, redis: Redis, criteria: Criteria, top_n: int = DEFAULT_TOP_PATHS,
                 build: str | None = None) -> None:
        self.redis = redis
        self.criteria = criteria
        self.top_n = top_n
        self.build = build

    def collect(self) -> Iterator[Metric]:
        snap = counters.read_snapshot(self.redis, self.build)
        effective = data.effective_mismatches(self.redis, self.criteria, self.build)
        yield from families(snap, self.top_n, effective)


def registry(redis: Redis, criteria: Criteria, top_n: int = DEFAULT_TOP_PATHS,
             build: str | None = None) -> CollectorRegistry:
    """The per-endpoint counters are those of one candidate build (default: the newest; a
    new build starts them again, which Prometheus reads as a counter reset)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RedisCollector(redis, criteria, top_n, build))
    return reg


def render(redis: Redis, criteria: Criteria, top_n: int = DEFAULT_TOP_PATHS) -> bytes:
    """The exposition text of every diffsvc metric, read from Redis now."""
    return generate_latest(registry(redis, criteria, top_n))


async def handle_metrics(request: web.Request) -> web.Response:
    """GET /metrics: the counters, read from Redis now (the report server's connection)."""
    cfg = request.app[CONFIG]
    reg = registry(request.app[REDIS], Criteria.from_config(cfg), cfg.metrics_top_paths,
                   request.query.get("build"))
    body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, reg)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


def add_routes(app: web.Application) -> None:
    """Serve `GET /metrics` on the report server (its Redis and Config app keys)."""
    app.router.add_get("/metrics", handle_metrics)
