"""Noise: margins over raw vs noise rates, effective counts from signature groups, and
suspected noise without a secondary (classification, counters, suggested YAML)."""

from __future__ import annotations

import time

import pytest
import yaml

from diffsvc.core import signatures as groups
from diffsvc.core.models import Comparison, FieldDiff
from diffsvc.report import quality, suggest
from diffsvc.report.noise import Margins, effective_mismatches, is_regression, item_counts
from diffsvc.report.verdict import classify
from tests.conftest import CRITERIA


@pytest.mark.parametrize(("raw", "noise", "expected"), [
    (1.0, 1.0, False),     # differs as often as two production instances do
    (0.3, 0.28, False),    # within the relative margin
    (0.5, 0.1, True),
    (0.005, 0.0, False),   # below the absolute margin
    (0.02, 0.0, True),
])
def test_margins(raw: float, noise: float, expected: bool) -> None:
    assert is_regression(raw, noise, Margins(0.25, 0.01)) is expected


def test_without_noise_data_one_difference_is_not_significant_many_are_a_regression() -> None:
    assert classify(1, 1000, 0, 0, CRITERIA).label == "not_significant"
    assert classify(20, 80, 0, 0, CRITERIA).label == "regression"
    # the baseline explains it: production differs from itself as often
    judged = classify(500, 1000, 480, 1000, CRITERIA)
    assert judged.label == "noise" and judged.effect == pytest.approx(0.02)


def test_effective_mismatches_count_groups_holding_a_counted_item() -> None:
    sigs = {"g1": ([("$.uuid", "changed")], 90),
            "g2": ([("$.uuid", "changed"), ("$.price", "changed")], 10),
            "g3": ([("$.price", "changed")], 5)}
    assert effective_mismatches(sigs, {("$.price", "changed")}) == 15
    assert effective_mismatches(sigs, set()) == 0
    assert item_counts(sigs) == {("$.uuid", "changed"): 100, ("$.price", "changed"): 15}


def test_signature_is_order_free_and_deduplicated() -> None:
    a = [FieldDiff("$.b", "changed"), FieldDiff("$.a", "added"), FieldDiff("$.b", "changed")]
    b = [FieldDiff("$.a", "added"), FieldDiff("$.b", "changed")]
    assert groups.signature(a) == groups.signature(b) == [("$.a", "added"), ("$.b", "changed")]
    assert groups.signature_id(groups.signature(a)) == groups.signature_id(groups.signature(b))
    assert groups.from_json(groups.signature_json(groups.signature(a)))[0] == {
        "path": "$.a", "kind": "added"}


@pytest.mark.parametrize(("a", "b", "reason"), [
    ("3f2c1a6e-8d7b-4c2a-9e1f-0a1b2c3d4e5f", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "uuid"),
    ("2024-05-01T10:00:00Z", "2024-05-01T10:00:03.120+02:00", "timestamp"),
    ("Wed, 01 May 2024 10:00:00 GMT", "Wed, 01 May 2024 10:00:02 GMT", "timestamp"),
    (1714557600, 1714557603, "timestamp"),
    (1714557600120, 1714557600480, "timestamp"),
    ("d41d8cd98f00b204e9800998ecf8427e", "9e107d9d372bb6826bd81d3542a419d6", "hash"),
    ("q8Zr3LmN0pXv7TbK2sYw", "Hc5Jf1Qa9RzUe4GdWo6M", "nonce"),
    ("alice", "bob", None),
    ("2024-05-01T10:00:00Z", "yesterday", None),
    (10, 11, None),
    ("Ann Smith Junior ok", "Bob Smith Junior ok", None),
])
def test_classify(a: object, b: object, reason: str | None) -> None:
    assert suggest.classify(a, b) == reason


def cmp(endpoint: str, *diffs: FieldDiff, at: float = 0.0) -> Comparison:
    return Comparison("x", endpoint, "mismatch", list(diffs), compared_at=at or time.time())


PROOF = "production answered the same request differently 3 times in 3 repeats"


def test_suspects_need_evidence_from_production_and_shapes_only_rank() -> None:
    uuid_a, uuid_b = "3f2c1a6e-8d7b-4c2a-9e1f-0a1b2c3d4e5f", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    seen = [cmp("GET /a", FieldDiff("$.id", "changed", uuid_a, uuid_b),
                FieldDiff("$.name", "changed", "x", "y"),
                FieldDiff("header.x-nonce", "changed", uuid_b, uuid_a)),
            cmp("GET /a", FieldDiff("$.id", "changed", uuid_b, uuid_a))]
    assert suggest.suspects(seen, {}) == []  # the candidate's values alone decide nothing
    evidence = {("GET /a", p): PROOF for p in ("$.id", "$.name", "header.x-nonce")}
    found = suggest.suspects(seen, evidence)
    assert [(s.path, s.reason, s.seen, s.of) for s in found] == [
        ("$.id", "uuid", 2, 2), ("header.x-nonce", "uuid", 1, 1), ("$.name", "volatile", 0, 1)]
    assert found[1].rule == {"match": "GET /a", "ignore": {"headers": ["x-nonce"]}}
    assert found[0].evidence == PROOF and found[0].to_dict()["evidence"] == PROOF


def test_a_field_that_goes_missing_is_never_suspected() -> None:
    uuid = "3f2c1a6e-8d7b-4c2a-9e1f-0a1b2c3d4e5f"
    seen = [cmp("GET /a", FieldDiff("$.id", "removed", uuid, None))]
    assert suggest.suspects(seen, {("GET /a", "$.id"): PROOF}) == []


def test_monotonic_counters_rank_as_counters() -> None:
    seen = [cmp("GET /c", FieldDiff("$.hits", "changed", n, n + k), at=float(n))
            for n, k in ((100, 1), (105, 3), (130, 2))]
    evidence = {("GET /c", "$.hits"): PROOF}
    assert [s.reason for s in suggest.suspects(seen[:2], evidence)] == ["volatile"]
    [s] = suggest.suspects(seen, evidence)
    assert (s.path, s.reason) == ("$.hits", "counter")
    back_and_forth = [cmp("GET /c", FieldDiff("$.n", "changed", a, b), at=float(i))
                      for i, (a, b) in enumerate([(1, 2), (5, 3), (7, 8)])]
    assert [s.reason for s in suggest.suspects(back_and_forth, {("GET /c", "$.n"): PROOF})] == \
        ["volatile"]


@pytest.mark.parametrize(("pairs", "relation"), [
    ([(10, 11.0), (20, 22.0), (35, 38.5)], "candidate = primary × 1.1"),
    ([(10, 13), (20, 23)], "candidate = primary + 3"),
    ([("ann", "ANN"), ("bob", "BOB")], "candidate = primary.upper()"),
    ([(10, 11), (20, 25)], None),
    ([(10, 11)], None),  # one observation is no rule
    ([(1.0, 1.1), (1.0, 1.1)], None),  # one primary value, changed alike: no function of it
])
def test_systematic_differences(pairs: list[tuple[object, object]], relation: str | None) -> None:
    diffs = [FieldDiff("$.price", "changed", a, b) for a, b in pairs]
    assert suggest.systematic(diffs) == relation


def test_a_status_is_never_systematic() -> None:
    """200 -> 503 on every call (and 200/201 -> 503/506) is a failing candidate, not
    `candidate = primary × 2.515`."""
    for pairs in ([(200, 503), (200, 503)], [(200, 503), (201, 506)]):
        diffs = [FieldDiff("status", "changed", a, b, "status") for a, b in pairs]
        assert suggest.systematic(diffs) is None


def test_a_systematic_field_is_never_suggested_even_when_production_is_volatile() -> None:
    seen = [cmp("GET /p", FieldDiff("$.price", "changed", p, round(p * 1.1, 6)), at=float(p))
            for p in (10, 11, 12, 13)]
    assert suggest.suspects(seen, {("GET /p", "$.price"): PROOF}) == []


def test_suggest_yaml_is_a_config_fragment_that_loads() -> None:
    from diffsvc import config
    from diffsvc.core.rules import RuleSet

    found = [suggest.Suspect("GET /a/{id}", "$.token", "nonce", 3, 3),
             suggest.Suspect("GET /a/{id}", "header.x-nonce", "uuid", 2, 2),
             suggest.Suspect("users", "$..updated_at", "timestamp", 5, 5)]
    text = suggest.suggest_yaml(found, {"users": "GET /users/{id}"})
    assert text.startswith("#") and "looks like a nonce in 3 of 3" in text
    doc = yaml.safe_load(text)
    assert doc["routes"] == [
        {"match": "GET /a/{id}", "ignore": {"fields": ["$.token"], "headers": ["x-nonce"]}},
        {"match": "GET /users/{id}", "ignore": {"fields": ["$..updated_at"]}}]
    RuleSet.build({"fields": [], "headers": []}, config.parse_routes("routes", doc["routes"]))
    assert suggest.suggest_yaml([]).startswith("# no suspected noise")


@pytest.mark.parametrize(("path", "pairs", "timing"), [
    ("$.query_ms", [(3.7, 12.01)], True),
    ("$.meta.took", [(3, 11)], True),                    # an integer, but `took` is a duration
    ("$['elapsed']", [(0.25, 0.31), (0.2, 0.9)], True),
    ("$.rows[*].render_time", [(1.5, 0.5)], True),
    ("$.duration", [(4, 5)], False),                     # integers under a unit-less name
    ("$.total", [(3.7, 12.01)], False),                  # not named like a timing
    ("$.query_ms", [(3.7, "slow")], False),
    ("$.query_ms", [(-1.0, 2.0)], False),
    ("$.html[*].body[*].footer[*].span[*]['#text']", [("Queries took 3.2ms", "Queries took 17ms")],
     True),
    ("$.line[4]", [("/* built in 812 ms */", "/* built in 97 ms */")], True),
    ("$.html[*].body[*].footer[*]['#text']", [("Powered by app 1.0", "Powered by app 1.1")],
     False),                                             # numbers, but not a time
    ("$.status_text", [("took 3 ms", "failed after 3 ms")], False),
    ("$.html[*].body[*].footer[*]['#text']",              # the version beside the timing
     [("Powered by app 1.0 · Queries took 3.2ms", "Powered by app 1.1 · Queries took 9ms")],
     False),
])
def test_looks_like_timing(path: str, pairs: list[tuple[object, object]], timing: bool) -> None:
    assert suggest.looks_like_timing(path, pairs) is timing


def test_a_timing_is_suggested_first_from_one_observation_and_labelled_timing() -> None:
    uuid_a, uuid_b = "3f2c1a6e-8d7b-4c2a-9e1f-0a1b2c3d4e5f", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    rising = [cmp("GET /t", FieldDiff("$.query_ms", "changed", 2.5 + n, 3.5 + 2 * n),
                  FieldDiff("$.id", "changed", uuid_a, uuid_b), at=float(n + 1))
              for n in range(3)]  # moves one way, like a counter: still a timing
    evidence = {("GET /t", "$.query_ms"): PROOF, ("GET /t", "$.id"): PROOF}
    found = suggest.suspects(rising, evidence)
    assert [(s.path, s.reason, s.seen) for s in found] == [("$.query_ms", "timing", 3),
                                                           ("$.id", "uuid", 3)]
    assert suggest.suspects(rising, {}) == []  # the shape alone decides nothing
    [once] = suggest.suspects([cmp("GET /t", FieldDiff("$.query_ms", "changed", 9.1, 2.4))],
                              evidence)
    assert (once.reason, once.rule) == ("timing", {"match": "GET /t",
                                                   "ignore": {"fields": ["$.query_ms"]}})


def test_a_changed_status_is_listed_first_among_equal_fields() -> None:
    """A candidate answering 503 where primary answered 200 differs at every body field too;
    the table shows the first few fields, so `status` leads them."""
    sig = [("$.error", "added"), ("$.id", "removed"), ("status", "changed")]
    counts = quality.Counts(pairs=80, matches=0, mismatches=80, errors=0, noise_pairs=0,
                            noise_mismatches=0, noise_kinds={}, noise_fields={},
                            groups={"s": (sig, 80)}, candidate_errors=0, error_kinds={},
                            learned={})
    rows = quality.fields(counts, CRITERIA)
    assert [f.path for f in rows] == ["status", "$.error", "$.id"]
