"""The typed report: frozen objects built once from storage (`data.build`) and read by every
format, the web API, the gates, the metrics and the notifier. Nothing changes them later.

`mismatches` / `mismatch_rate` of an endpoint are effective figures (see `quality`); `raw`
keeps the counted ones.
`to_dict` gives the JSON `diffsvc report --format json` prints (the README's stable keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffsvc.report.suggest import Suspect
from diffsvc.report.verdict import Classification, Criteria, failure, kinds_text


def rate(n: int, of: int) -> float:
    """n / of as the report shows rates (6 decimals; 0.0 when there is nothing to divide)."""
    return round(n / of, 6) if of else 0.0


@dataclass(frozen=True, slots=True)
class FieldStats:
    """One (path, kind) of an endpoint: candidate differences, the baseline's, the verdict."""

    path: str
    kind: str
    mismatches: int
    rate: float
    noise: int
    noise_rate: float
    judged: Classification
    baseline: str = ""       # where `noise` comes from: secondary, production, or "" (none)
    baseline_pairs: int = 0  # what it is counted over

    @property
    def regression(self) -> bool:
        return self.judged.regression

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "mismatches": self.mismatches,
                "rate": self.rate, "noise": self.noise, "noise_rate": self.noise_rate,
                "baseline": self.baseline or None, "baseline_pairs": self.baseline_pairs,
                "regression": self.regression, **self.judged.to_dict()}


@dataclass(frozen=True, slots=True)
class Group:
    signature: tuple[tuple[str, str], ...]  # (path, kind)
    count: int
    samples: tuple[str, ...]
    noise: bool  # every (path, kind) of it is noise

    def to_dict(self) -> dict[str, Any]:
        return {"signature": [{"path": p, "kind": k} for p, k in self.signature],
                "count": self.count, "samples": list(self.samples), "noise": self.noise}


@dataclass(frozen=True, slots=True)
class Errors:
    """Candidate errors: failed candidate calls where primary answered, by kind."""

    candidate: int
    attempts: int            # pairs where primary answered (compared + candidate errors)
    kinds: tuple[tuple[str, int], ...]
    reasons: tuple[str, ...]  # a few distinct messages, newest first
    samples: tuple[str, ...]  # exchange ids of recent errors
    failing: str | None       # why the errors fail the candidate (None: they do not)

    @property
    def rate(self) -> float:
        return rate(self.candidate, self.attempts)

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "attempts": self.attempts, "rate": self.rate,
                "kinds": dict(self.kinds), "text": kinds_text(dict(self.kinds)),
                "reasons": list(self.reasons), "samples": list(self.samples),
                "failing": self.failing}


@dataclass(frozen=True, slots=True)
class EndpointReport:
    endpoint: str
    pairs: int
    errors: int                   # every pair that could not be compared
    raw_matches: int
    raw_mismatches: int
    effective_mismatches: int
    fields: tuple[FieldStats, ...]  # every (path, kind), regressions first
    noise_pairs: int
    noise_mismatches: int
    groups: tuple[Group, ...]
    suspected_noise: tuple[Suspect, ...]
    systematic: tuple[dict[str, Any], ...]  # {path, relation, seen}: candidate = f(primary)
    candidate_errors: Errors
    judged: Classification          # the endpoint as a whole (its counted pairs)
    samples: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()  # a few raw request targets the template stands for

    @property
    def compared(self) -> int:
        return self.raw_matches + self.raw_mismatches

    @property
    def mismatches(self) -> int:
        return self.effective_mismatches

    @property
    def matches(self) -> int:
        return self.compared - self.effective_mismatches

    @property
    def mismatch_rate(self) -> float:
        return rate(self.effective_mismatches, self.compared)

    @property
    def classification(self) -> str:
        """regression (a field or the whole is one), noise, not_significant, or clean."""
        if any(f.regression for f in self.fields) or self.judged.regression:
            return "regression"
        if not self.effective_mismatches:
            return "noise" if self.raw_mismatches else "clean"
        return "not_significant"

    @property
    def score(self) -> float:
        """Kayenta-style: the share (0-100) of calls production answered that the candidate
        answered the same (effective matches over compared pairs plus candidate errors)."""
        attempts = self.compared + self.candidate_errors.candidate
        return round(100 * self.matches / attempts, 1) if attempts else 100.0

    @property
    def outcome(self) -> str:
        """pass / marginal (differences, none a regression) / fail, at a 0 mismatch rate."""
        if self.failure(0.0):
            return "fail"
        return "marginal" if self.effective_mismatches else "pass"

    def failure(self, max_rate: float) -> str | None:
        """Why this endpoint fails a gate at `max_rate` (verdict.failure), or None."""
        return failure(self.endpoint, errors=self.candidate_errors.failing,
                       mismatches=self.mismatches, compared=self.compared,
                       regression=self.classification == "regression", max_rate=max_rate)

    def to_dict(self, top: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "endpoint": self.endpoint, "pairs": self.pairs, "matches": self.matches,
            "mismatches": self.mismatches, "errors": self.errors,
            "mismatch_rate": self.mismatch_rate, "classification": self.classification,
            "outcome": self.outcome, "score": self.score,
            "judged": self.judged.to_dict(),
            "fields": [f.to_dict() for f in self.fields[:top]],
            "raw": {"matches": self.raw_matches, "mismatches": self.raw_mismatches,
                    "mismatch_rate": rate(self.raw_mismatches, self.compared)},
            "noise": {"pairs": self.noise_pairs, "mismatches": self.noise_mismatches,
                      "mismatch_rate": rate(self.noise_mismatches, self.noise_pairs)},
            "suppressed_as_noise": self.raw_mismatches - self.effective_mismatches,
            "candidate_errors": self.candidate_errors.to_dict(),
            "groups": [g.to_dict() for g in self.groups],
            "suspected_noise": [x.to_dict() for x in self.suspected_noise],
            "systematic": list(self.systematic), "examples": list(self.examples)}
        if self.samples:
            out["samples"] = list(self.samples)
        return out


@dataclass(frozen=True, slots=True)
class Report:
    endpoints: tuple[EndpointReport, ...]  # highest effective mismatch rate first
    gateway: dict[str, int]
    criteria: Criteria
    top_fields: int = 20
    build: str = ""                 # the candidate build shown ("" when none was stamped)
    builds: tuple[str, ...] = ()    # every build compared, newest first

    def totals(self) -> dict[str, int]:
        return {"pairs": sum(e.pairs for e in self.endpoints),
                "matches": sum(e.matches for e in self.endpoints),
                "mismatches": sum(e.mismatches for e in self.endpoints),
                "errors": sum(e.errors for e in self.endpoints),
                "candidate_errors": sum(e.candidate_errors.candidate for e in self.endpoints)}

    def to_dict(self) -> dict[str, Any]:
        criteria = self.criteria.to_dict()
        entries = [e.to_dict(self.top_fields) for e in self.endpoints]
        for entry in entries:
            entry["noise"]["margins"] = {k: criteria[k] for k in ("min_relative", "min_absolute")}
        return {"endpoints": entries, "totals": self.totals(), "gateway": self.gateway,
                "criteria": criteria, "build": self.build or None, "builds": list(self.builds)}
