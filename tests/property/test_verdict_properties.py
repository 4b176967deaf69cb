"""Properties of the verdict (hypothesis): the statistics agree with their definitions, more
mismatches or more candidate errors never turn a fail into a pass, and the verdict is
symmetric where it should be (endpoint order, the test's transposition, the effect's sign)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from diffsvc.report import gate, stats
from diffsvc.report.gate import GateParams
from diffsvc.report.verdict import classify, error_reason
from tests.conftest import CRITERIA

SEVERITY = {"pass": 0, "inconclusive": 1, "fail": 2}
P = GateParams(max_mismatch_rate=0.02, min_pairs=20)


@st.composite
def tables(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n1, n0 = draw(st.integers(1, 60)), draw(st.integers(0, 60))
    return draw(st.integers(0, n1)), n1, draw(st.integers(0, n0)), n0


def brute_fisher(x1: int, n1: int, x0: int, n0: int) -> float:
    total, k = n1 + n0, x1 + x0
    return sum(math.comb(k, i) * math.comb(total - k, n1 - i)
               for i in range(x1, min(k, n1) + 1)) / math.comb(total, n1)


@given(tables())
def test_fisher_is_the_hypergeometric_tail_and_survives_transposition(t):
    x1, n1, x0, n0 = t
    p = stats.fisher_greater(x1, n1, x0, n0)
    if n0 and x1:
        assert math.isclose(p, brute_fisher(x1, n1, x0, n0), rel_tol=1e-9, abs_tol=1e-12)
        # the 2x2 table read by columns gives the same tail
        transposed = stats.fisher_greater(x1, x1 + x0, n1 - x1, (n1 - x1) + (n0 - x0))
        assert math.isclose(p, transposed, rel_tol=1e-9, abs_tol=1e-12)


@given(st.integers(0, 300), st.integers(1, 300), st.floats(0.001, 0.5))
def test_binomial_tail_matches_its_definition(x, n, p0):
    x = min(x, n)
    exact = sum(math.comb(n, k) * p0**k * (1 - p0) ** (n - k) for k in range(x, n + 1))
    assert math.isclose(stats.binomial_greater(x, n, p0), min(1.0, exact), rel_tol=1e-7,
                        abs_tol=1e-12)


@given(tables())
def test_more_candidate_differences_never_undo_a_regression(t):
    x1, n1, x0, n0 = t
    if classify(x1, n1, x0, n0, CRITERIA).regression and x1 < n1:
        assert classify(x1 + 1, n1, x0, n0, CRITERIA).regression
    if classify(x1, n1, x0, n0, CRITERIA).regression and x0 > 0:
        assert classify(x1, n1, x0 - 1, n0, CRITERIA).regression  # less noise: still one


@given(tables())
def test_the_test_is_one_sided_and_the_effect_antisymmetric(t):
    x1, n1, x0, n0 = t
    if not n0:
        return
    forward, backward = classify(x1, n1, x0, n0, CRITERIA), classify(x0, n0, x1, n1, CRITERIA)
    assert not (forward.regression and backward.regression)
    assert math.isclose(forward.effect, -backward.effect, abs_tol=1e-12)
    assert math.isclose(forward.effect_low, -backward.effect_high, abs_tol=1e-9)
    assert forward.effect_low <= forward.effect <= forward.effect_high


@settings(max_examples=200)
@given(st.integers(0, 400), st.integers(0, 400), st.integers(0, 200), st.integers(0, 50))
def test_more_mismatches_or_errors_never_turn_fail_into_pass(matches, mismatches, errors, more):
    def outcome(m: int, mm: int, e: int) -> str:
        counts = {"matches": m, "mismatches": mm, "cand_errors": e, "error:timeout": e}
        return gate.judge("GET /a", counts, P, CRITERIA).verdict

    base = outcome(matches, mismatches, errors)
    moved = min(more, matches)  # matches turned into mismatches, or into candidate errors
    assert SEVERITY[outcome(matches - moved, mismatches + moved, errors)] >= SEVERITY[base]
    assert SEVERITY[outcome(matches - moved, mismatches, errors + moved)] >= SEVERITY[base]
    assert SEVERITY[outcome(matches, mismatches + more, errors)] >= SEVERITY[base] or \
        base == "inconclusive"


@given(st.integers(0, 500), st.integers(1, 500))
def test_error_failure_is_monotone_in_errors(errors, attempts):
    errors = min(errors, attempts)
    if error_reason(errors, attempts, {"connect": errors}, CRITERIA) and errors < attempts:
        assert error_reason(errors + 1, attempts, {"connect": errors + 1}, CRITERIA)


@given(st.dictionaries(st.sampled_from(["GET /a", "GET /b", "GET /c", "GET /d"]),
                       st.tuples(st.integers(0, 300), st.integers(0, 300), st.integers(0, 30)),
                       min_size=1))
def test_the_verdict_does_not_depend_on_endpoint_order(raw):
    counts = {name: {"pairs": m + mm + e, "matches": m, "mismatches": mm, "cand_errors": e,
                     "error:reset": e} for name, (m, mm, e) in raw.items()}
    forward = gate.evaluate(counts, P, CRITERIA)
    backward = gate.evaluate(dict(reversed(list(counts.items()))), P, CRITERIA)
    assert (forward.verdict, forward.reason) == (backward.verdict, backward.reason)
