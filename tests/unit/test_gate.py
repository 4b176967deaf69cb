"""The gate's verdict rule and the Wilson bound, without sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffsvc.errors import ConfigError
from diffsvc.report import gate
from diffsvc.report.gate import GateParams
from tests.conftest import CRITERIA


def test_wilson_upper_matches_published_values():
    # Wilson 95 % interval of 10/100 is (0.0552, 0.1744); of 0/100, upper = z²/(n+z²)
    assert gate.wilson_upper(10, 100) == pytest.approx(0.1744, abs=1e-4)
    assert gate.wilson_upper(0, 100) == pytest.approx(3.8415 / 103.8415, abs=1e-4)
    assert gate.wilson_upper(0, 0) == 1.0
    assert gate.wilson_upper(5, 5) == 1.0


@given(st.integers(1, 10_000), st.data())
def test_wilson_upper_is_at_least_the_rate(pairs, data):
    mismatches = data.draw(st.integers(0, pairs))
    upper = gate.wilson_upper(mismatches, pairs)
    assert mismatches / pairs <= upper + 1e-12 <= 1.0 + 1e-12
    assert gate.wilson_upper(mismatches, pairs, 0.99) >= upper - 1e-12


P = GateParams(max_mismatch_rate=0.05, min_pairs=20)


def judge(endpoint: str, pairs: int, mismatches: int, errors: int) -> gate.EndpointGate:
    """The gate over `pairs` compared pairs (primary errors: not against the candidate)."""
    return gate.judge(endpoint, {"matches": pairs - mismatches, "mismatches": mismatches,
                                 "errors": errors}, P, CRITERIA)


def test_too_few_pairs_is_inconclusive():
    g = judge("GET /a", 19, 0, 0)
    assert g.verdict == "inconclusive" and "min_pairs=20" in g.reason


def test_rate_above_threshold_fails_with_one_line_reason():
    g = judge("GET /api/products/{id}", 100, 30, 2)
    assert g.verdict == "fail" and g.rate == 0.3
    assert "30.00%" in g.reason and "\n" not in g.reason


def test_pass_needs_the_upper_bound_within_threshold():
    assert judge("GET /a", 72, 0, 0).verdict == "inconclusive"  # upper 5.06 %
    assert judge("GET /a", 73, 0, 0).verdict == "pass"          # upper 4.99 %
    below_but_unsure = judge("GET /a", 100, 4, 0)
    assert below_but_unsure.verdict == "inconclusive" and "more pairs" in below_but_unsure.reason


def test_all_endpoints_take_the_worst_verdict():
    counts = {"GET /ok": {"pairs": 200, "matches": 200},
              "GET /bad": {"pairs": 200, "matches": 100, "mismatches": 100},
              "GET /quiet": {"pairs": 0}}
    res = gate.evaluate(counts, P, CRITERIA)
    assert res.verdict == "fail" and res.reason.startswith("GET /bad")
    assert [g.endpoint for g in res.endpoints] == ["GET /bad", "GET /ok"]
    assert (res.pairs, res.mismatches, res.rate) == (400, 100, 0.25)
    ok = gate.evaluate({"GET /ok": counts["GET /ok"]}, P, CRITERIA)
    assert ok.verdict == "pass"
    assert gate.evaluate({}, P, CRITERIA).verdict == "inconclusive"


def test_errors_are_reported_but_not_counted_as_pairs():
    res = gate.evaluate({"GET /a": {"pairs": 110, "matches": 100, "errors": 10}}, P, CRITERIA, "GET /a")
    assert (res.pairs, res.errors, res.verdict) == (100, 10, "pass")


def test_unknown_endpoint_is_inconclusive_and_names_known_ones():
    res = gate.evaluate({"GET /a": {"pairs": 5, "matches": 5}}, P, CRITERIA, "GET /typo")
    assert res.verdict == "inconclusive" and "GET /a" in res.reason


def test_params_from_strings_and_errors_name_the_key():
    p = gate.params_from({"window": "10m", "max_mismatch_rate": "0.02", "min_pairs": "50",
                          "inconclusive": "pass"})
    assert (p.window, p.minutes, p.max_mismatch_rate, p.min_pairs) == (600.0, 10, 0.02, 50)
    assert gate.params_from({"window": "90s"}).minutes == 2
    for key, bad in (("max_mismatch_rate", "2"), ("min_pairs", "x"), ("window", "soon"), ("window", "2d"),
                     ("inconclusive", "maybe"), ("confidence", "1")):
        with pytest.raises(ConfigError) as exc:
            gate.params_from({key: bad})
        assert exc.value.key == key


def test_http_status_of_inconclusive_follows_the_parameter():
    res = gate.evaluate({}, P, CRITERIA)
    assert gate.http_status(res, P) == 425
    assert gate.http_status(res, GateParams(inconclusive="pass")) == 200
    assert gate.http_status(res, GateParams(inconclusive="fail")) == 412
