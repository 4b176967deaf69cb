"""compare() held to the labelled corpus (tests/corpus/cases.yaml): volatile-only pairs are
matches, every regression is found with exactly its paths, malformed bodies get a clear
verdict and never raise."""

from __future__ import annotations

from collections import Counter

import pytest

from diffsvc.core.compare import compare
from tests.corpus import CATEGORIES, Case, load_cases

CASES = load_cases()


def test_corpus_covers_every_category_and_kind() -> None:
    counts = Counter(c.category for c in CASES)
    assert all(counts[cat] >= 10 for cat in CATEGORIES), counts
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"
    verdicts = {c.verdict for c in CASES if c.category == "malformed"}
    assert verdicts == {"match", "mismatch", "error"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case) -> None:
    result = compare(case.exchange, case.ruleset, case.max_body)
    assert result.verdict == case.verdict, (result.diffs, result.error)
    assert result.paths == case.paths, result.diffs
    assert result.rules_digest == case.ruleset.digest
    if result.verdict == "error":
        assert result.error and "decode" in result.error
    if case.category == "malformed" and result.verdict != "error":
        assert result.body_kind, "a malformed body is labelled by what it was read as"


def test_invalid_json_is_labelled() -> None:
    [case] = [c for c in CASES if c.name == "candidate-claims-json-but-invalid"]
    result = compare(case.exchange, case.ruleset, case.max_body)
    assert result.body_kind == "json/json-invalid"
    [diff] = result.diffs
    assert "claims JSON but does not parse" in diff.candidate
