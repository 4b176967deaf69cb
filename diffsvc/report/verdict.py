"""The one classification every surface shares: report, web UI, metrics, alerts and gates.

A difference is judged against a noise baseline, never on its own:

- the baseline is how often production differs from itself at the same (path, kind):
  primary vs secondary when a secondary is configured (x0 of n0 pairs);
- `classify` runs Fisher's exact test, one-sided (is the candidate's rate above the
  baseline's?). Without any baseline sample it runs the exact binomial test against the
  margins' absolute floor (`noise.min_absolute`, 1 % by default) instead;
- a **regression** needs all three: p-value below 1 - `verdict.confidence`, at least
  `verdict.min_evidence` differences, and Diffy's margins (the rate beats the baseline by
  `noise.min_relative` and `noise.min_absolute`), which stay as a floor;
- otherwise it is **noise** when production itself differed there, or **not significant**.

Errors are judged apart (`error_reason`): a candidate that failed calls production answered
fails when its error rate is above `max_error_rate` and the Wilson lower bound of that rate
(at `verdict.confidence`) is too, so one failure in a thousand never fails a build, and
fifteen out of fifteen always do."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from diffsvc.report import stats
from diffsvc.report.noise import Margins, is_regression
from diffsvc.storage.quality import error_kinds, signature_counts

Label = Literal["regression", "not_significant", "noise"]

ERROR_KINDS = {"connect": "connection refused", "timeout": "timeout", "reset": "connection reset",
               "tls": "TLS failure", "protocol": "protocol error",
               "too_large": "response too large", "undecodable": "undecodable body",
               "other": "error"}


@dataclass(frozen=True, slots=True)
class Criteria:
    """Everything effective figures depend on; required wherever they are computed."""

    margins: Margins
    confidence: float
    min_evidence: int
    max_error_rate: float

    @classmethod
    def from_config(cls, cfg: Any) -> Criteria:
        return cls(Margins.from_config(cfg), cfg.verdict_confidence, cfg.verdict_min_evidence,
                   cfg.max_error_rate)

    def to_dict(self) -> dict[str, Any]:
        return {"min_relative": self.margins.min_relative,
                "min_absolute": self.margins.min_absolute, "confidence": self.confidence,
                "min_evidence": self.min_evidence, "max_error_rate": self.max_error_rate}


@dataclass(frozen=True, slots=True)
class Classification:
    label: Label
    p_value: float
    effect: float       # candidate rate - baseline rate
    effect_low: float   # its interval at the criteria's confidence
    effect_high: float

    @property
    def regression(self) -> bool:
        return self.label == "regression"

    def to_dict(self) -> dict[str, Any]:
        return {"classification": self.label, "p_value": round(self.p_value, 6),
                "effect": {"difference": round(self.effect, 6), "low": round(self.effect_low, 6),
                           "high": round(self.effect_high, 6)}}


def classify(x1: int, n1: int, x0: int, n0: int, c: Criteria) -> Classification:
    """x1 differences in n1 candidate pairs against x0 in n0 baseline pairs (n0 = 0: none)."""
    rate1 = x1 / n1 if n1 else 0.0
    if n0:
        p = stats.fisher_greater(x1, n1, x0, n0)
        above = is_regression(rate1, x0 / n0, c.margins)
    else:
        p = stats.binomial_greater(x1, n1, c.margins.min_absolute)
        above = rate1 > c.margins.min_absolute
    diff, low, high = stats.newcombe(x1, n1, x0, n0, c.confidence)
    label: Label
    if x1 >= c.min_evidence and above and p < 1 - c.confidence:
        label = "regression"
    elif x0 > 0:
        label = "noise"
    else:
        label = "not_significant"
    return Classification(label, p, diff, low, high)


def percent(rate: float) -> str:
    return f"{rate * 100:.4g}%"


def kinds_text(kinds: Mapping[str, int]) -> str:
    ranked = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(ERROR_KINDS.get(k, k) + (f" {n}" if len(ranked) > 1 else "")
                     for k, n in ranked)


def error_reason(errors: int, attempts: int, kinds: Mapping[str, int], c: Criteria) -> str | None:
    """Why the candidate fails on its errors (None: it does not). `attempts` are the calls
    production answered; `errors` those of them the candidate failed."""
    if errors <= 0 or attempts <= 0:
        return None
    rate = errors / attempts
    low, _ = stats.wilson(errors, attempts, c.confidence)
    if rate <= c.max_error_rate or low <= c.max_error_rate:
        return None
    return (f"candidate errors {errors}/{attempts} ({kinds_text(kinds) or 'error'}) > "
            f"{percent(c.max_error_rate)}")


def failure(name: str, *, errors: str | None, mismatches: int, compared: int,
            regression: bool, max_rate: float) -> str | None:
    """Why an endpoint fails a gate (None: it does not). The one decision of every surface:
    the candidate's errors (`error_reason`) fail first; mismatches fail when their rate is
    above `max_rate` and the statistics call them a regression."""
    if errors:
        return f"{name}: {errors}"
    rate = mismatches / compared if compared else 0.0
    if rate > max_rate and regression:
        return (f"{name}: mismatch rate {rate:.2%} ({mismatches}/{compared}) is above "
                f"{max_rate:.2%}")
    return None


def endpoint_judgement(effective: int, compared: int, c: Criteria) -> Classification:
    """An endpoint as a whole: are its counted differences (pairs holding a (path, kind) that
    is no noise: see `quality`) significant beyond the margins' floor?"""
    return classify(effective, compared, 0, 0, c)


def effective_in(counts: Mapping[str, int], counted: Collection[str] | None) -> int:
    """Mismatches of a window that count: those whose signature (`sig:<id>` fields) holds a
    (path, kind) the report does not call noise. Without signature fields (buckets written
    before they were kept) or without the report's `counted`, every mismatch counts."""
    by_signature = signature_counts(counts)
    if counted is None or not by_signature:
        return counts.get("mismatches", 0)
    return sum(n for sig, n in by_signature.items() if sig in counted)


def judge_counts(name: str, counts: Mapping[str, int], criteria: Criteria, max_rate: float,
                 counted: Collection[str] | None) -> tuple[str | None, int, Classification]:
    """`failure`, the effective mismatches and the endpoint's classification from counter
    hashes (a window's summed per-minute buckets: matches, mismatches, sig:<id>,
    cand_errors, error:<kind>); `counted`: the signatures the report counts (its field
    classification), so a window is judged as the report judges."""
    compared = counts.get("matches", 0) + counts.get("mismatches", 0)
    effective = effective_in(counts, counted)
    candidate = counts.get("cand_errors", 0)
    judged = endpoint_judgement(effective, compared, criteria)
    errors = error_reason(candidate, compared + candidate, error_kinds(counts), criteria)
    return failure(name, errors=errors, mismatches=effective, compared=compared,
                   regression=judged.regression, max_rate=max_rate), effective, judged
