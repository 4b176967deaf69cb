"""One endpoint's report from its counts (pure): every (path, kind) classified against its
noise baseline by `verdict.classify`, effective counts, signature groups, candidate errors.

`mismatches` / `mismatch_rate` are effective: with a noise baseline (a secondary), the pairs
whose signature holds a regression; without one, every mismatching pair (effective = raw)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diffsvc.core.models import Comparison, FieldDiff
from diffsvc.report import suggest
from diffsvc.report.model import EndpointReport, Errors, FieldStats, Group, rate
from diffsvc.report.noise import Item, effective_mismatches, item_counts
from diffsvc.report.verdict import Criteria, classify, endpoint_judgement, error_reason

GROUPS_SHOWN = 10
_ORDER = {"regression": 0, "not_significant": 1, "noise": 2}


@dataclass(frozen=True, slots=True)
class Counts:
    """What storage holds for one endpoint (see store.endpoint_stats and quality_stats)."""

    pairs: int
    matches: int
    mismatches: int
    errors: int
    noise_pairs: int
    noise_mismatches: int
    noise_kinds: Mapping[Item, int]
    noise_fields: Mapping[str, int]   # by path alone: records written before kinds were kept
    groups: Mapping[str, tuple[Sequence[Item], int]]
    candidate_errors: int
    error_kinds: Mapping[str, int]
    learned: Mapping[str, tuple[int, int]]  # path -> (request keys answered differently, repeats)

    @classmethod
    def from_store(cls, stats: Mapping[str, Any], q: Mapping[str, Any],
                   groups: Mapping[str, tuple[Sequence[Item], int]],
                   learned: Mapping[str, tuple[int, int]]) -> Counts:
        return cls(stats["pairs"], stats["matches"], stats["mismatches"], stats["errors"],
                   q["noise_pairs"], q["noise_mismatches"], q["noise_kinds"], q["noise_fields"],
                   groups, q["cand_errors"], q["error_kinds"], learned)

    def baseline(self, item: Item) -> tuple[int, int, str]:
        """(x0, n0, source) of one (path, kind): primary vs secondary when a secondary is
        configured; else, for `changed` only, production seen answering the same request
        differently; else none."""
        if self.noise_pairs:
            if self.noise_kinds:
                return self.noise_kinds.get(item, 0), self.noise_pairs, SECONDARY
            x0 = self.noise_fields.get(item[0], 0) if item[1] == "changed" else 0
            return x0, self.noise_pairs, SECONDARY
        if item[1] == "changed" and item[0] in self.learned:
            return (*self.learned[item[0]], PRODUCTION)
        return 0, 0, ""


SECONDARY, PRODUCTION = "secondary", "production"


def fields(c: Counts, criteria: Criteria) -> tuple[FieldStats, ...]:
    compared = c.matches + c.mismatches
    out = []
    for (path, kind), n in item_counts(c.groups).items():
        x0, n0, source = c.baseline((path, kind))
        out.append(FieldStats(path, kind, n, rate(n, compared), x0, rate(x0, n0),
                              classify(n, compared, x0, n0, criteria), source, n0))
    # a changed status first among equals: the first thing a reader of the table must see
    out.sort(key=lambda f: (_ORDER[f.judged.label], -f.mismatches, f.path != "status", f.path,
                            f.kind))
    return tuple(out)


def evidence(name: str, rows: Sequence[FieldStats]) -> dict[tuple[str, str], str]:
    """Why production is volatile at a path, for the suggestions (never the candidate)."""
    out = {}
    for f in rows:
        if f.kind != "changed" or not f.noise:
            continue
        if f.baseline == SECONDARY:
            text = f"primary and secondary differ in {f.noise} of {f.baseline_pairs} pairs"
        else:
            text = (f"production answered the same request differently {f.noise} times in "
                    f"{f.baseline_pairs} repeats")
        out[(name, f.path)] = text
    return out


def systematic(comparisons: Sequence[Comparison]) -> list[dict[str, Any]]:
    """Fields whose candidate value is a function of primary's in every sample."""
    by_path: dict[str, list[FieldDiff]] = {}
    for c in comparisons:
        for d in c.diffs:
            by_path.setdefault(d.path, []).append(d)
    return [{"path": path, "relation": relation, "seen": len(diffs)}
            for path, diffs in sorted(by_path.items())
            if (relation := suggest.systematic(diffs))]


def counted(c: Counts, rows: Sequence[FieldStats]) -> set[Item]:
    """The (path, kind)s whose differences count: noise never; with a secondary only
    regressions, without one every difference that is not noise."""
    return {(f.path, f.kind) for f in rows
            if f.judged.label != "noise" and (f.regression or not c.noise_pairs)}


def counted_signatures(c: Counts, criteria: Criteria) -> set[str]:
    """The signature groups holding a counted (path, kind): what a window's `sig:<id>`
    counts are judged by (verdict.judge_counts)."""
    items = counted(c, fields(c, criteria))
    return {sig for sig, (members, _) in c.groups.items() if items.intersection(members)}


def counted_mismatches(c: Counts, items: set[Item]) -> int:
    """The endpoint's effective mismatches (the report's MISMATCH figure, /metrics'
    diffsvc_mismatches_total): pairs whose signature holds a counted (path, kind)."""
    return min(c.mismatches, effective_mismatches(c.groups, items))


def endpoint(name: str, c: Counts, criteria: Criteria, *,
             group_samples: Mapping[str, Sequence[str]], comparisons: Sequence[Comparison],
             error_reasons: Sequence[str], error_ids: Sequence[str],
             samples: Sequence[str] = (), examples: Sequence[str] = ()) -> EndpointReport:
    rows = fields(c, criteria)
    items = counted(c, rows)
    compared = c.matches + c.mismatches
    effective = counted_mismatches(c, items)
    top = sorted(c.groups.items(), key=lambda kv: (-kv[1][1], kv[0]))[:GROUPS_SHOWN]
    groups = tuple(Group(tuple(members), n, tuple(group_samples.get(sig, ())),
                         not items.intersection(members))
                   for sig, (members, n) in top)
    attempts = compared + c.candidate_errors
    errors = Errors(c.candidate_errors, attempts, tuple(sorted(c.error_kinds.items())),
                    tuple(error_reasons), tuple(error_ids),
                    error_reason(c.candidate_errors, attempts, c.error_kinds, criteria))
    found = suggest.suspects(comparisons, evidence(name, rows))
    return EndpointReport(
        endpoint=name, pairs=c.pairs, errors=c.errors, raw_matches=c.matches,
        raw_mismatches=c.mismatches, effective_mismatches=effective, fields=rows,
        noise_pairs=c.noise_pairs, noise_mismatches=c.noise_mismatches, groups=groups,
        suspected_noise=tuple(found),
        systematic=tuple(systematic(comparisons)), candidate_errors=errors,
        judged=endpoint_judgement(effective, compared, criteria),
        samples=tuple(samples), examples=tuple(examples))
