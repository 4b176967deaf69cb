"""Traffic control without sockets: allow/deny, consistent sampling, token bucket, rewrites."""

from __future__ import annotations

import pytest

from diffsvc import config
from diffsvc.core.models import Request
from diffsvc.core.traffic import TokenBucket, TrafficControl, key_value
from diffsvc.errors import ConfigError


def tc(**values: object) -> TrafficControl:
    return TrafficControl(config.load(env={}, overrides=values))


def test_deny_wins_and_allow_admits_only_what_it_names() -> None:
    t = tc(allow=["GET /api/*", "POST /api/search"], deny=["* /api/admin/*"])
    assert t.decide(Request("GET", "/api/users/1")) is None
    assert t.decide(Request("GET", "/api/admin/x")) == "skipped_denied"
    assert t.decide(Request("GET", "/health")) == "skipped_not_allowed"
    assert t.decide(Request("POST", "/api/search")) is None  # named POST: admitted
    assert t.decide(Request("POST", "/api/users")) == "skipped_not_allowed"
    assert tc().decide(Request("POST", "/x")) == "skipped_method"


def test_key_sources() -> None:
    req = Request("GET", "/p", "user=u7&x=1", [("X-User-Id", "42"), ("Cookie", "a=1; session=s9")])
    assert key_value("header:x-user-id", req) == "42"
    assert key_value("cookie:session", req) == "s9"
    assert key_value("query:user", req) == "u7"
    assert key_value("query:none", req) is None


def test_consistent_sampling_is_all_or_none_per_key() -> None:
    t = tc(sample_rate=0.1, **{"sampling.key": "header:X-User-Id"})
    chosen = set()
    for key in range(2000):
        verdicts = {t.decide(Request("GET", f"/r/{n}", "", [("X-User-Id", f"user-{key}")]))
                    for n in range(3)}
        assert len(verdicts) == 1
        if verdicts == {None}:
            chosen.add(key)
    assert 140 <= len(chosen) <= 260  # 10% of 2000, ±6 standard deviations


def test_route_sample_rate_multiplies_and_headers_are_rewritten() -> None:
    t = tc(routes=[{"match": "GET /api/orders/{id}", "sample_rate": 0.0},
                   {"match": "GET /api/users/{id}", "shadow_headers": {"X-Tenant": "test",
                                                                        "Authorization": None}}])
    assert t.decide(Request("GET", "/api/orders/3")) == "skipped_sample"
    req = Request("GET", "/api/users/3", "", [("Authorization", "Bearer x"), ("X-Tenant", "prod")])
    assert t.decide(req) is None
    assert t.rewrite(req).headers == [("X-Tenant", "test")]


def test_token_bucket_caps_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(100.0, clock=lambda: now[0])
    taken = 0
    for _ in range(10_000):  # 1000 attempts a second for 10 s
        now[0] += 0.001
        taken += bucket.take()
    assert 995 <= taken <= 1006


@pytest.mark.parametrize(("values", "key"), [
    ({"sampling.key": "body:x"}, "sampling.key"),
    ({"allow": ["GET api"]}, "allow[0]"),
    ({"mode": "sidecar"}, "mode"),
    ({"shadow_rate_limit": -1}, "shadow_rate_limit"),
    ({"routes": [{"match": "GET /a", "shadow_headers": {"Bad Name": "x"}}]},
     "routes[0].shadow_headers.Bad Name"),
])
def test_bad_settings_name_the_key(values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(env={}, overrides=values)
    assert err.value.key == key


def test_examples_load_and_point_at_diffsvc() -> None:
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "examples"
    cfg = config.load(root / "traffic-control.yaml", env={})
    assert cfg.sampling_key == "header:X-User-Id" and cfg.shadow_rate_limit == 50
    istio = yaml.safe_load((root / "istio-mirror.yaml").read_text())
    assert istio["spec"]["http"][0]["mirror"]["host"] == "diffsvc-target"
    envoy = (root / "envoy-mirror.yaml").read_text()
    assert "request_mirror_policies" in envoy and "cluster: diffsvc_target" in envoy
    assert "mirror /_diffsvc_mirror;" in (root / "nginx-mirror.conf").read_text()
