"""Spine-level comparison of one Exchange: verdicts, field paths, status and header diffs."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
import pytest

from diffsvc.core.compare import compare, diff_trees
from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.core.rules import RuleSet

MAX_BODY = 1024 * 1024
JSON = ("Content-Type", "application/json")


def rules(fields: list[str] | None = None, headers: list[str] | None = None,
          routes: list[dict[str, Any]] | None = None) -> RuleSet:
    return RuleSet.build({"fields": fields or [], "headers": headers or []}, routes or [])


def jreply(payload: Any, status: int = 200, headers: list[tuple[str, str]] | None = None,
           gz: bool = False) -> Reply:
    body = orjson.dumps(payload)
    hs = [JSON, *(headers or [])]
    if gz:
        body = gzip.compress(body)
        hs.append(("Content-Encoding", "gzip"))
    return Reply(status, hs, body, 1.0)


def exchange(primary: Reply, candidate: Reply, path: str = "/api/users/42") -> Exchange:
    return Exchange(Request("GET", path), primary, candidate)


def test_identical_replies_match() -> None:
    result = compare(exchange(jreply({"a": 1}), jreply({"a": 1})), rules(), MAX_BODY)
    assert result.verdict == "match" and result.diffs == [] and result.error is None
    assert result.endpoint == "GET /api/users/{id}"
    assert result.body_kind == "json"


def test_ignored_fields_match() -> None:
    a = {"id": 1, "request_id": "r1", "meta": {"generated_at": "t1"},
         "items": [{"sku": "x", "updated_at": "u1"}, {"sku": "y", "updated_at": "u2"}]}
    b = {"id": 1, "request_id": "r2", "meta": {"generated_at": "t2"},
         "items": [{"sku": "x", "updated_at": "u3"}, {"sku": "y", "updated_at": "u4"}]}
    ruleset = rules(["$.request_id", "$..generated_at", "$.items[*].updated_at"])
    assert compare(exchange(jreply(a), jreply(b)), ruleset, MAX_BODY).verdict == "match"
    # without the rules the same pair differs in exactly those places
    unruled = compare(exchange(jreply(a), jreply(b)), rules(), MAX_BODY)
    assert unruled.paths == ["$.items[*].updated_at", "$.meta.generated_at", "$.request_id"]


def test_changed_field_is_reported_with_its_path() -> None:
    result = compare(exchange(jreply({"id": 1, "price": 9.0, "request_id": "a"}),
                              jreply({"id": 1, "price": 8.1, "request_id": "b"})),
                     rules(["$.request_id"]), MAX_BODY)
    assert result.verdict == "mismatch"
    [diff] = result.diffs
    assert (diff.path, diff.kind, diff.primary, diff.candidate) == ("$.price", "changed", 9.0, 8.1)


def test_paths_in_arrays_are_folded_but_locations_keep_indices() -> None:
    result = compare(exchange(jreply({"items": [{"p": 1}, {"p": 2}]}),
                              jreply({"items": [{"p": 1}, {"p": 3}]})), rules(), MAX_BODY)
    [diff] = result.diffs
    assert diff.path == "$.items[*].p" and diff.location == "$.items[1].p"


def test_added_removed_and_type_changed() -> None:
    diffs = {(d.path, d.kind) for d in diff_trees({"a": 1, "b": "x", "c": 1},
                                                   {"a": "1", "c": 1.0, "d": None})}
    assert diffs == {("$.a", "type_changed"), ("$.b", "removed"), ("$.d", "added")}


def test_array_length_change_reports_the_added_item() -> None:
    diffs = diff_trees({"xs": [1, 2, 3]}, {"xs": [1, 2, 3, 4]})
    kinds = {(d.path, d.kind) for d in diffs}
    assert ("$.xs", "length_changed") in kinds
    assert ("$.xs[*]", "added") in kinds


def test_an_item_inserted_mid_array_is_one_added_item_not_a_cascade() -> None:
    a = [{"id": i, "v": i} for i in range(5)]
    b = a[:2] + [{"id": 9, "v": 9}] + a[2:]
    assert [(d.location, d.kind) for d in diff_trees(a, b)] == [
        ("$", "length_changed"), ("$[2]", "added")]
    assert [(d.location, d.kind) for d in diff_trees(b, a)] == [
        ("$", "length_changed"), ("$[2]", "removed")]


def test_a_changed_run_of_unequal_length_keeps_absolute_indices() -> None:
    a = [{"id": 0}, {"id": 1, "v": 1}, {"id": 3, "v": 3}]
    b = [{"id": 0}, {"id": 1, "v": 5}, {"id": 2, "v": 2}, {"id": 3, "v": 3}]
    diffs = [(d.location, d.kind, d.primary, d.candidate) for d in diff_trees(a, b)]
    assert ("$[1].v", "changed", 1, 5) in diffs
    assert ("$[2]", "added", None, '{"id":2,"v":2}') in diffs
    assert len(diffs) == 3  # and length_changed


def test_tolerance_applies_inside_realigned_arrays() -> None:
    tolerant = RuleSet.build({"fields": [], "headers": []}, [],
                             tolerance=[{"path": "$.xs[*].p", "abs": 0.5}])
    a = {"xs": [{"p": 1.0}, {"p": 2.0}]}
    b = {"xs": [{"p": 1.2}, {"p": 2.0}, {"p": 3.0}]}
    diffs = diff_trees(a, b, rules=tolerant.for_endpoint("GET /x"))
    assert [(d.location, d.kind) for d in diffs] == [("$.xs", "length_changed"),
                                                      ("$.xs[2]", "added")]


def test_status_difference() -> None:
    result = compare(exchange(jreply({"a": 1}), jreply({"a": 1}, status=500)), rules(), MAX_BODY)
    assert result.verdict == "mismatch"
    assert [(d.path, d.primary, d.candidate) for d in result.diffs] == [("status", 200, 500)]


def test_header_difference_is_named_header_dot_name() -> None:
    result = compare(
        exchange(jreply({}, headers=[("Cache-Control", "max-age=60")]),
                 jreply({}, headers=[("cache-control", "no-store"), ("X-New", "1")])),
        rules(), MAX_BODY)
    assert {(d.path, d.kind) for d in result.diffs} == {
        ("header.cache-control", "changed"), ("header.x-new", "added")}


def test_volatile_and_configured_headers_are_ignored() -> None:
    a = jreply({"a": 1}, headers=[("Date", "Mon"), ("Server", "a"), ("X-Request-Id", "1"),
                                  ("ETag", "x"), ("X-Mine", "1")])
    b = jreply({"a": 1}, headers=[("Date", "Tue"), ("Server", "b"), ("X-Request-Id", "2"),
                                  ("X-Mine", "2")], gz=True)
    assert compare(exchange(a, b), rules(headers=["X-Mine"]), MAX_BODY).verdict == "match"
    assert compare(exchange(a, b), rules(), MAX_BODY).paths == ["header.x-mine"]


def test_route_rules_apply_only_to_their_endpoint() -> None:
    ruleset = rules(routes=[{"match": "GET /api/users/{id}", "name": "user",
                             "ignore": {"fields": ["$.seen"], "headers": []}}])
    a, b = jreply({"seen": 1}), jreply({"seen": 2})
    assert compare(exchange(a, b, "/api/users/1"), ruleset, MAX_BODY).verdict == "match"
    other = compare(exchange(a, b, "/api/orders/1"), ruleset, MAX_BODY)
    assert other.verdict == "mismatch" and other.endpoint == "GET /api/orders/{id}"


def test_shadow_error_gives_verdict_error() -> None:
    failed = Reply(error="ClientConnectorError: connection refused")
    result = compare(exchange(jreply({"a": 1}), failed), rules(), MAX_BODY)
    assert result.verdict == "error"
    assert result.error is not None and result.error.startswith("candidate:")
    assert result.diffs == []


def test_undecodable_body_gives_verdict_error() -> None:
    bad = Reply(200, [JSON, ("Content-Encoding", "gzip")], b"not gzip")
    result = compare(exchange(jreply({"a": 1}), bad), rules(), MAX_BODY)
    assert result.verdict == "error" and "decoded" in (result.error or "")


def test_text_and_binary_bodies() -> None:
    text = ("Content-Type", "text/plain")
    result = compare(exchange(Reply(200, [text], b"a\nb\nc"), Reply(200, [text], b"a\nB\nc")),
                     rules(), MAX_BODY)
    [diff] = result.diffs
    assert (diff.path, diff.location, result.body_kind) == ("$.line[2]", "$.line[2]", "text")
    png = ("Content-Type", "image/png")
    same = compare(exchange(Reply(200, [png], b"\x89\x00"), Reply(200, [png], b"\x89\x00")),
                   rules(), MAX_BODY)
    assert (same.verdict, same.body_kind) == ("match", "bytes")


def test_body_kind_change_is_one_body_diff() -> None:
    result = compare(exchange(jreply({"a": 1}), Reply(200, [("Content-Type", "text/html")],
                                                      b"<h1>oops</h1>")), rules(), MAX_BODY)
    assert [(d.path, d.kind) for d in result.diffs] == [("header.content-type", "changed"),
                                                        ("body", "type_changed")]
    assert result.body_kind.startswith("json/")


def test_comparison_round_trips_through_bytes() -> None:
    from diffsvc.core.models import Comparison

    result = compare(exchange(jreply({"p": 1}), jreply({"p": 2})), rules(), MAX_BODY)
    again = Comparison.from_bytes(result.to_bytes())
    assert again.diffs == result.diffs and again.verdict == "mismatch"


def test_exchanges_stored_by_version_1_are_still_read() -> None:
    v1 = {"v": 1, "id": "old", "captured_at": 1.5,
          "request": {"method": "GET", "path": "/a", "query": "q=1", "headers": [["A", "b"]],
                      "body": ""},
          "primary": {"status": 200, "headers": [], "body": base64.b64encode(b'{"x":1}').decode(),
                      "elapsed_ms": 1.0, "error": None},
          "candidate": {"status": 500, "headers": [], "body": "", "elapsed_ms": 2.0,
                        "error": "timeout"},
          "secondary": None}
    ex = Exchange.from_bytes(orjson.dumps(v1))
    assert (ex.id, ex.request.target, ex.primary.body, ex.candidate.error) == (
        "old", "/a?q=1", b'{"x":1}', "timeout")
    with pytest.raises(ValueError, match="schema version 7"):
        Exchange.from_bytes(orjson.dumps({**v1, "v": 7}))
    with pytest.raises(ValueError, match="frame holds"):
        Exchange.from_bytes(ex.to_bytes()[:-3] + b"xyzw")
