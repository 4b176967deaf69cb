"""GET /metrics on the report server, read from Redis at scrape time, after the demo's
traffic went through the real gateway and a worker."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from diffsvc.report import data, server
from diffsvc.storage import keys
from tests.conftest import CRITERIA
from tests.integration import demo_helpers
from tests.integration.demo_helpers import PRODUCTS, USERS


def scrape(url: str, token: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    req = urllib.request.Request(url + "/metrics")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_metrics_match_the_report(serve, r, redis_url):
    cfg = demo_helpers.traffic(serve, r, redis_url, users=60, products=50)
    samples = scrape(serve(server.build_app(cfg)).url)
    report = {e["endpoint"]: e for e in data.build(r, CRITERIA).to_dict()["endpoints"]}
    for endpoint in (USERS, PRODUCTS):
        ep = (("endpoint", endpoint),)
        assert samples[("diffsvc_comparisons_total", ep)] == report[endpoint]["pairs"]
        assert samples[("diffsvc_mismatches_total", ep)] == report[endpoint]["mismatches"]
        errors = (("endpoint", endpoint), ("kind", "not_candidate"))
        assert samples[("diffsvc_errors_total", errors)] == report[endpoint]["errors"] == 0
        assert samples[("diffsvc_noise_total", ep)] == 0
    assert samples[("diffsvc_mismatches_total", (("endpoint", PRODUCTS),))] == 16
    assert samples[("diffsvc_field_mismatches_total",
                    (("endpoint", PRODUCTS), ("path", "$.price")))] == 16
    assert samples[("diffsvc_gateway_requests_total", ())] == 110
    assert samples[("diffsvc_shadow_calls_total", (("outcome", "ok"),))] == 110
    assert samples[("diffsvc_shadow_dropped_total", ())] == 0
    assert samples[("diffsvc_capture_failures_total", ())] == 0
    for upstream in ("primary", "candidate"):
        inf = ("diffsvc_upstream_latency_seconds_bucket", (("le", "+Inf"), ("upstream", upstream)))
        assert samples[inf] == 110
        low = ("diffsvc_upstream_latency_seconds_bucket", (("le", "0.005"), ("upstream", upstream)))
        assert 0 <= samples[low] <= 110
        mean = samples[("diffsvc_upstream_latency_seconds_sum", (("upstream", upstream),))] / 110
        assert 0 < mean < 5  # loopback upstreams: each call took some time, less than seconds
    assert samples[("diffsvc_comparison_duration_seconds_count", ())] == 110
    assert samples[("diffsvc_comparison_duration_seconds_sum", ())] > 0
    assert samples[("diffsvc_queue_depth", ())] == 0


def test_counters_are_read_at_scrape_time_with_bounded_paths(serve, r, make_config):
    import dataclasses

    cfg = dataclasses.replace(make_config(), metrics_top_paths=2)
    url = serve(server.build_app(cfg)).url
    endpoint = "GET /x"
    r.sadd(keys.ENDPOINTS, endpoint)
    r.hset(keys.totals(endpoint), mapping={"pairs": 10, "matches": 4, "mismatches": 6,
                                           "noise_pairs": 10, "noise_mismatches": 3})
    r.hset(keys.fields(endpoint), mapping={"$.a": 6, "$.b": 4, "$.c": 2, "$.d[*].e": 1})
    before = scrape(url)
    ep = (("endpoint", endpoint),)
    assert before[("diffsvc_comparisons_total", ep)] == 10
    assert before[("diffsvc_noise_total", ep)] == 3
    paths = {dict(labels)["path"]: v for (name, labels), v in before.items()
             if name == "diffsvc_field_mismatches_total"}
    assert paths == {"$.a": 6, "$.b": 4, "other": 3}
    r.hincrby(keys.totals(endpoint), "pairs", 5)  # another process counts: seen at next scrape
    r.rpush(f"rq:queue:{keys.QUEUE_NAME}", "job-1", "job-2")
    after = scrape(url)
    assert after[("diffsvc_comparisons_total", ep)] == 15
    assert after[("diffsvc_queue_depth", ())] == 2


def test_metrics_need_the_token_when_one_is_set(serve, r, make_config):
    url = serve(server.build_app(make_config(report_token="s3cret"))).url
    with pytest.raises(urllib.error.HTTPError) as exc:
        scrape(url)
    assert exc.value.code == 401
    assert ("diffsvc_gateway_requests_total", ()) in scrape(url, "s3cret")
