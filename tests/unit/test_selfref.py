"""Upstream self-references become a placeholder before comparing."""

from __future__ import annotations

import gzip

import orjson

from diffsvc.core.compare import compare, compare_secondary
from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.core.rules import RuleSet
from diffsvc.core.selfref import Origins, SelfReference

PRIMARY, CANDIDATE, SECONDARY = ("http://10.0.0.5:8001", "http://10.0.0.6:8002",
                                 "http://10.0.0.7:8003")
RULES = RuleSet.build({"fields": [], "headers": []}, [])


def page(origin: str, *, page_no: int = 2, gzipped: bool = False) -> Reply:
    host = origin.split("://")[1]
    body = orjson.dumps({"next_url": f"{origin}/x?page={page_no}", "host": host,
                         "rows": [1, 2]})
    headers = [("Content-Type", "application/json"), ("Location", f"{origin}/x?page=1"),
               ("Link", f'<{origin}/x?page={page_no}>; rel="next"')]
    if gzipped:
        body, headers = gzip.compress(body), headers + [("Content-Encoding", "gzip")]
    return Reply(200, headers, body)


def exchange(a: Reply, b: Reply, second: Reply | None = None) -> Exchange:
    return Exchange(Request("GET", "/x", "page=1", [], b""), a, b, second)


def test_each_upstreams_own_origin_compares_equal() -> None:
    ex = exchange(page(PRIMARY), page(CANDIDATE, gzipped=True), page(SECONDARY))
    origins = Origins.of(PRIMARY, CANDIDATE, SECONDARY)
    assert compare(ex, RULES, 1 << 20, origins).verdict == "match"
    assert compare_secondary(ex, RULES, 1 << 20, origins) == []
    without = compare(ex, RULES, 1 << 20)
    assert set(without.paths) == {"$.next_url", "$.host", "header.location", "header.link"}


def test_a_real_difference_beside_a_self_reference_is_still_found() -> None:
    ex = exchange(page(PRIMARY), page(CANDIDATE, page_no=3))
    result = compare(ex, RULES, 1 << 20, Origins.of(PRIMARY, CANDIDATE))
    assert result.paths == ["$.next_url", "header.link"]
    [diff] = [d for d in result.diffs if d.path == "$.next_url"]
    assert (diff.primary, diff.candidate) == ("{origin}/x?page=2", "{origin}/x?page=3")


def test_another_upstreams_origin_is_a_difference() -> None:
    """Only an upstream's own origin is replaced: the candidate linking to another host is a
    difference; two answers equal byte for byte stay equal (they are not searched)."""
    ex = exchange(page(PRIMARY), page(SECONDARY))
    result = compare(ex, RULES, 1 << 20, Origins.of(PRIMARY, CANDIDATE))
    assert "$.next_url" in result.paths
    same = exchange(page(PRIMARY), page(PRIMARY))
    assert compare(same, RULES, 1 << 20, Origins.of(PRIMARY, CANDIDATE)).verdict == "match"


def test_forms_and_boundaries() -> None:
    ref = SelfReference.of("http://127.0.0.1:80")
    assert ref.in_text("http://127.0.0.1:80/a http://127.0.0.1/b 127.0.0.1:80") == (
        "{origin}/a {origin}/b {origin}")
    # a longer port or host name is another origin
    assert ref.in_text("http://127.0.0.1:8080/a 127.0.0.1:80.5") == (
        "http://127.0.0.1:8080/a 127.0.0.1:80.5")
    ref = SelfReference.of("https://api.example.com")
    assert ref.in_data(b'"https://api.example.com/v1" "api.example.com:443" '
                       b'"https://api.example.com.evil/"') == (
        b'"{origin}/v1" "{origin}" "https://api.example.com.evil/"')
    assert SelfReference.of("http://u:p@h:81/base").in_text("http://h:81/x h:81") == (
        "{origin}/x {origin}")


def test_links_built_from_the_clients_host_compare_equal() -> None:
    """Collect mode: the proxy forwarded the client's Host to primary, so primary's links
    carry it while the candidate's carry its own origin; both are self-references. Another
    host in the candidate's answer is still a difference, and a bad Host changes nothing."""
    public = "http://shop.example:8443"
    ex = Exchange(Request("GET", "/x", "page=1", [("Host", "shop.example:8443")], b""),
                  page(public), page(CANDIDATE))
    assert compare(ex, RULES, 1 << 20, Origins.of(PRIMARY, CANDIDATE)).verdict == "match"
    # a collector's config need not name primary (it is the proxy's upstream)
    assert compare(ex, RULES, 1 << 20, Origins.of(None, CANDIDATE)).verdict == "match"
    other = Exchange(ex.request, page(public), page(SECONDARY))
    assert "$.next_url" in compare(other, RULES, 1 << 20, Origins.of(PRIMARY, CANDIDATE)).paths
    bad = Exchange(Request("GET", "/x", "", [("Host", "h:bad")], b""), page(public),
                   page(CANDIDATE))
    assert "$.next_url" in compare(bad, RULES, 1 << 20, Origins.of(PRIMARY, CANDIDATE)).paths
