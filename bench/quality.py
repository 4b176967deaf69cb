"""Diff quality on the labelled corpus (tests/corpus/cases.yaml): precision, recall and the
false-positive rate of compare(), plus path exactness and malformed-body handling.

    python bench/quality.py            # table
    python bench/quality.py --json     # the same figures as JSON

Positive = the case's expected verdict is `mismatch`. A true positive is a mismatch reported
for it; a false positive is a mismatch reported for a case expected to match. A case that
raises counts as wrong (and is listed)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diffsvc.core.compare import compare  # noqa: E402
from tests.corpus import load_cases  # noqa: E402


def measure() -> dict[str, object]:
    cases = load_cases()
    n: Counter[str] = Counter()
    wrong: list[str] = []
    baseline_fp = 0
    for case in cases:
        ex = case.exchange
        naive_differs = (ex.primary.status, ex.primary.body) != (ex.candidate.status, ex.candidate.body)
        baseline_fp += case.verdict == "match" and naive_differs
        verdict: str
        try:
            result = compare(case.exchange, case.ruleset, case.max_body)
            verdict, paths = result.verdict, result.paths
        except Exception as exc:  # counted, never fatal: the point is to find them
            verdict, paths = f"exception {type(exc).__name__}", []
        expected_pos, got_pos = case.verdict == "mismatch", verdict == "mismatch"
        n["tp"] += expected_pos and got_pos
        n["fn"] += expected_pos and not got_pos
        n["fp"] += case.verdict == "match" and got_pos
        n["negatives"] += case.verdict == "match"
        n["positives"] += expected_pos
        n["exact_paths"] += expected_pos and got_pos and paths == case.paths
        n["exceptions"] += verdict.startswith("exception")
        n[f"{case.category}_cases"] += 1
        n[f"{case.category}_right"] += verdict == case.verdict and paths == case.paths
        if verdict != case.verdict or paths != case.paths:
            wrong.append(f"{case.name}: expected {case.verdict} {case.paths}, got {verdict} {paths}")
    precision = n["tp"] / (n["tp"] + n["fp"]) if n["tp"] + n["fp"] else 1.0
    recall = n["tp"] / n["positives"] if n["positives"] else 1.0
    fpr = n["fp"] / n["negatives"] if n["negatives"] else 0.0
    return {"cases": len(cases), "precision": round(precision, 4), "recall": round(recall, 4),
            "false_positive_rate": round(fpr, 4),
            "path_exact": f"{n['exact_paths']}/{n['positives']}",
            "by_category": {c: f"{n[c + '_right']}/{n[c + '_cases']}"
                            for c in ("volatile", "regression", "malformed")},
            "baseline_bytes_equal_false_positive_rate":
                round(baseline_fp / n["negatives"], 4) if n["negatives"] else 0.0,
            "exceptions": n["exceptions"], "counts": dict(n), "wrong": wrong}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    m = measure()
    if args.json:
        print(orjson.dumps(m, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"corpus: {m['cases']} labelled pairs")
    print(f"precision            {m['precision']:.4f}")
    print(f"recall               {m['recall']:.4f}")
    print(f"false-positive rate  {m['false_positive_rate']:.4f}")
    print(f"exact paths          {m['path_exact']} regressions/mismatches found with exact paths")
    for cat, right in m["by_category"].items():  # type: ignore[attr-defined]
        print(f"{cat:<20} {right} right (verdict and paths)")
    print(f"exceptions           {m['exceptions']}")
    print(f"baseline: comparing status and raw body bytes would give a false-positive rate of "
          f"{m['baseline_bytes_equal_false_positive_rate']:.4f}")
    for line in m["wrong"]:  # type: ignore[attr-defined]
        print(f"  WRONG {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
