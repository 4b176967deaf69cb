"""Suspected noise, suggested only on evidence from production's side: the same request
answered differently by production (learned, `storage.volatility`), or primary and secondary
differing. The candidate's values alone never decide: shape heuristics (timestamps and dates,
UUIDs, nonces, hashes, monotonically changing counters; the shape of a timing, `query_ms:
3.7`, ranks first and is labelled "timing") only rank the suggestions, and a
field whose candidate value is a function of primary's (`systematic`: a ratio, an offset, a
case change) is a regression with a cause, never noise. Each suggestion carries a
ready-to-paste ignore rule; `suggest_yaml` turns them into the config YAML printed by
`diffsvc rules suggest`. Pure: works on Comparisons, however loaded.

The patterns are compiled once, at import; a value is classified by at most a few
`fullmatch` calls."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from diffsvc.core.jsonpath import ignore_section
from diffsvc.core.models import Comparison, FieldDiff

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")
_HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
_CLOCK = re.compile(r"\d{2}:\d{2}:\d{2}(\.\d+)?")
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_TOKEN = re.compile(r"[A-Za-z0-9+/_\-]{16,}={0,2}")
_EPOCH_RANGES = ((1e9, 4.2e9), (1e12, 4.2e12), (1e15, 4.2e15), (1e18, 4.2e18))

_TIMING_NAME = re.compile(r"\w*_(ms|time|secs|seconds|millis|us|ns)|took|elapsed|duration"
                          r"|latency|query_ms|time_ms|runtime", re.IGNORECASE)
_LAST_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)'?\]?\Z")
# a number with a unit of time after it: `3.2ms`, `17 ms`, `0.4 seconds`
_DURATION = re.compile(r"\d+(?:\.\d+)?\s*(?:ms|s|secs?|seconds?|millis\w*|µs|us|ns)\b",
                       re.IGNORECASE)

SHARE = 0.8          # of a field's observed differences that must look volatile
MIN_COUNTER_SEEN = 3  # observations before a number is called a counter


def _looks_random(a: str, b: str) -> bool:
    """Two tokens of one length, mixed letters and digits, with many distinct characters."""
    if len(a) != len(b) or not (_TOKEN.fullmatch(a) and _TOKEN.fullmatch(b)):
        return False
    return all(any(c.isdigit() for c in s) and any(c.isalpha() for c in s)
               and len(set(s)) >= min(10, len(s) // 2) for s in (a, b))


def classify(a: Any, b: Any) -> str | None:
    """Why a pair of differing values looks volatile, or None."""
    if isinstance(a, str) and isinstance(b, str):
        if _UUID.fullmatch(a) and _UUID.fullmatch(b):
            return "uuid"
        for pattern in (_ISO, _HTTP_DATE, _CLOCK):
            if pattern.fullmatch(a) and pattern.fullmatch(b):
                return "timestamp"
        if _HEX.fullmatch(a) and _HEX.fullmatch(b) and len(a) == len(b):
            return "hash"
        if _looks_random(a, b):
            return "nonce"
        return None
    if _number(a) and _number(b):
        for low, high in _EPOCH_RANGES:
            if low <= a < high and low <= b < high:
                return "timestamp"
    return None


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_counter(pairs: Sequence[tuple[Any, Any]]) -> bool:
    """Numbers that move one way, between primary and candidate and over time."""
    if len(pairs) < MIN_COUNTER_SEEN or not all(_number(a) and _number(b) for a, b in pairs):
        return False
    signs = {(b > a) - (b < a) for a, b in pairs}
    if len(signs) != 1 or 0 in signs:
        return False
    firsts = [a for a, _ in pairs]  # oldest first
    rising = all(x <= y for x, y in zip(firsts, firsts[1:], strict=False))
    falling = all(x >= y for x, y in zip(firsts, firsts[1:], strict=False))
    return (rising or falling) and len(set(firsts)) > 1


def _timing_text(a: Any, b: Any) -> bool:
    """Texts that differ only in durations (`Queries took 3.2ms`); any other difference,
    such as a version beside the duration, keeps them apart."""
    if not (isinstance(a, str) and isinstance(b, str) and _DURATION.search(a)):
        return False
    return _DURATION.sub("#", a) == _DURATION.sub("#", b)


def looks_like_timing(path: str, pairs: Sequence[tuple[Any, Any]]) -> bool:
    """The shape of a timing: a field named like a duration (`*_ms`, `*_time`, `took`,
    `elapsed`, `duration`, ...) whose values are non-negative numbers, a float among them
    unless the name says milliseconds or `took`; or a text (an HTML element's, a line)
    that differs only in its numbers and speaks of time. One observation is enough: a
    duration differs on every call, in no direction."""
    if pairs and all(_timing_text(a, b) for a, b in pairs):
        return True
    name = _LAST_NAME.search(path)
    if not pairs or name is None or not _TIMING_NAME.fullmatch(name.group(1)):
        return False
    values = [x for pair in pairs for x in pair]
    if not all(_number(x) and x >= 0 for x in values):
        return False
    return any(isinstance(x, float) for x in values) or name.group(1).lower().endswith(
        ("_ms", "took", "_us", "_ns"))


def rank(suspect: Suspect) -> tuple[bool, float]:
    """Most certain first: the shape of a timing ranks a suggestion above the others, then
    the share of its differences that looked volatile."""
    return suspect.reason == "timing", suspect.seen / max(suspect.of, 1)


@dataclass(frozen=True, slots=True)
class Suspect:
    endpoint: str
    path: str
    reason: str  # the shape differences have (ranks suggestions; "volatile": none)
    seen: int    # differences that look volatile
    of: int      # differences of this field observed
    evidence: str = ""  # why production is volatile here: what decided the suggestion

    @property
    def rule(self) -> dict[str, Any]:
        """The route rule to paste into the config file."""
        return {"match": self.endpoint, "ignore": ignore_section([self.path])}

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "path": self.path, "reason": self.reason,
                "seen": self.seen, "of": self.of, "evidence": self.evidence, "rule": self.rule}


def _ignorable(diff: FieldDiff) -> bool:
    return diff.path not in ("status", "body") and diff.kind in ("changed",)


def _constant(values: Sequence[float]) -> bool:
    return max(values) - min(values) <= 1e-9 * max(1.0, abs(values[0]))


def _ratio(a: Any, b: Any) -> float | None:
    return b / a if _number(a) and _number(b) and a else None


def systematic(diffs: Sequence[FieldDiff]) -> str | None:
    """How the candidate's value follows from primary's, when it does in every difference
    seen (at least two, of two primary values or more: one value changed the same way every
    time is no function): a ratio, an offset or a case change. That is a regression with a
    cause, never noise. A status is a code, not a quantity: never."""
    pairs = [(d.primary, d.candidate) for d in diffs if d.kind == "changed" and d.path != "status"]
    if len(pairs) < 2 or len(pairs) != len(diffs) or len({repr(a) for a, _ in pairs}) < 2:
        return None
    if all(_number(a) and _number(b) for a, b in pairs):
        ratios = [r for a, b in pairs if (r := _ratio(a, b)) is not None]
        if len(ratios) == len(pairs) and _constant(ratios) and abs(ratios[0] - 1) > 1e-6:
            return f"candidate = primary × {ratios[0]:.6g}"
        offsets = [b - a for a, b in pairs]
        if _constant(offsets):
            return f"candidate = primary + {offsets[0]:.6g}"
        return None
    if all(isinstance(a, str) and isinstance(b, str) for a, b in pairs):
        for name in ("upper", "lower", "title", "swapcase"):
            if all(getattr(a, name)() == b for a, b in pairs):
                return f"candidate = primary.{name}()"
    return None


def suspects(comparisons: Iterable[Comparison],
             evidence: Mapping[tuple[str, str], str]) -> list[Suspect]:
    """Fields to suggest as noise: only those production is seen to change by itself
    (`evidence`, keyed by (endpoint, path): the same request answered differently, or
    primary and secondary differing), that only ever change, and whose candidate values are
    no function of primary's. Shapes (timestamps, UUIDs, counters, ...) only rank them."""
    observed: dict[tuple[str, str], list[FieldDiff]] = defaultdict(list)
    for c in sorted(comparisons, key=lambda c: c.compared_at):
        for diff in c.diffs:
            observed[(c.endpoint, diff.path)].append(diff)
    out = []
    for (endpoint, path), diffs in sorted(observed.items()):
        proof = evidence.get((endpoint, path))
        if not proof or not all(_ignorable(d) for d in diffs) or systematic(diffs):
            continue  # no evidence from production, a field that goes missing, or a cause
        reasons = Counter(r for r in (classify(d.primary, d.candidate) for d in diffs) if r)
        if reasons and reasons.most_common(1)[0][1] >= SHARE * len(diffs):
            reason, seen = reasons.most_common(1)[0]
        else:
            pairs = [(d.primary, d.candidate) for d in diffs]
            reason = ("timing" if looks_like_timing(path, pairs)
                      else "counter" if _is_counter(pairs) else "volatile")
            seen = 0 if reason == "volatile" else len(diffs)  # no shape: ranked last
        out.append(Suspect(endpoint, path, reason, seen, len(diffs), proof))
    return sorted(out, key=rank, reverse=True)  # stable: ties keep endpoint, path order


def suggest_yaml(found: Sequence[Suspect], route_matches: dict[str, str] | None = None) -> str:
    """Suggested rules as a config-file fragment (`routes:`), with the evidence as comments.

    `route_matches` maps a configured route's name to its `match`, so a named route is
    addressed by its pattern."""
    route_matches = route_matches or {}
    if not found:
        return "# no suspected noise in the stored mismatches\n"
    routes: dict[str, dict[str, list[str]]] = {}
    comments = []
    for s in found:
        match = route_matches.get(s.endpoint, s.endpoint)
        ignore = routes.setdefault(match, {})
        for kind, values in s.rule["ignore"].items():
            if values[0] not in ignore.setdefault(kind, []):
                ignore[kind].append(values[0])
        comments.append(f"#   {match}  {s.path}: {s.evidence}; looks like a {s.reason} in "
                        f"{s.seen} of {s.of} differences")
    doc = {"routes": [{"match": m, "ignore": ign} for m, ign in routes.items()]}
    head = ["# suggested by `diffsvc rules suggest`: suspected noise, review before use"]
    return "\n".join(head + comments) + "\n" + yaml.safe_dump(doc, sort_keys=False)
