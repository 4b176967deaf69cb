"""The canary gate: is the candidate good enough over the last window?

Verdict rule (asymmetric on purpose: stopping a rollout on suspicion is cheap, promoting a
regression is not):
- `fail` when the candidate's errors (failed calls where primary answered) are above
  `max_error_rate` with evidence, or when the mismatch rate is above `max_mismatch_rate` and
  the statistics call it a regression (`verdict.failure`, shared with every other surface);
- `inconclusive` while an endpoint has fewer than `min_pairs` compared pairs in the window,
  or while its rate is above the threshold without being a regression yet;
- `pass` when the Wilson score upper bound of the rate (at `confidence`, 95 % by default) is
  at most `max_mismatch_rate`: the candidate is below the threshold with that confidence;
- otherwise `inconclusive`: the rate is below the threshold, but not yet with confidence.
  With no mismatch at all, `pass` needs about z²(1-p)/p pairs: 381 for p = 1 %, 73 for 5 %.

Pairs are compared pairs (matches + mismatches), as in `diffsvc report`; pairs that could
not be compared (errors) are reported beside them. The window is read from the per-minute
buckets the workers write, so it is rounded up to whole minutes and includes the current one.

HTTP: 200 for pass, 412 for fail; inconclusive answers 425 ("too early") by default, so a
Flagger webhook never advances on no evidence — `inconclusive=pass` (or `fail`) maps it to
200 (or 412) instead. See docs/canary.md."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aiohttp import web
from redis import Redis

from diffsvc.config import parse_duration, ranged
from diffsvc.config.appkey import CONFIG
from diffsvc.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_OK, ConfigError
from diffsvc.report import data, stats
from diffsvc.report.appkeys import REDIS
from diffsvc.report.verdict import Criteria, judge_counts
from diffsvc.storage import builds, store
from diffsvc.storage import quality as diffq

Outcome = Literal["pass", "fail", "inconclusive"]
SEVERITY = {"pass": 0, "inconclusive": 1, "fail": 2}
EXIT_CODES = {"pass": EXIT_OK, "fail": EXIT_FAIL, "inconclusive": EXIT_INCONCLUSIVE}
HTTP_STATUS = {"pass": 200, "fail": 412, "inconclusive": 425}
INCONCLUSIVE_AS = ("hold", "pass", "fail")

DEFAULT_WINDOW = 300.0
DEFAULT_MAX_RATE = 0.01
DEFAULT_MIN_PAIRS = 100
DEFAULT_CONFIDENCE = 0.95
MAX_WINDOW = 86400.0


@dataclass(frozen=True)
class GateParams:
    window: float = DEFAULT_WINDOW
    max_mismatch_rate: float = DEFAULT_MAX_RATE
    min_pairs: int = DEFAULT_MIN_PAIRS
    confidence: float = DEFAULT_CONFIDENCE
    inconclusive: str = "hold"

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.window / 60))


@dataclass
class EndpointGate:
    endpoint: str
    pairs: int
    mismatches: int
    errors: int
    rate: float
    wilson_upper: float
    verdict: Outcome
    reason: str
    candidate_errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    classification: str = "not_significant"


@dataclass
class GateResult:
    verdict: Outcome
    reason: str
    pairs: int
    mismatches: int
    errors: int
    rate: float
    wilson_upper: float
    window: str
    max_mismatch_rate: float
    min_pairs: int
    confidence: float
    max_error_rate: float
    candidate_errors: int
    endpoint: str | None = None
    endpoints: list[EndpointGate] = field(default_factory=list)
    build: str | None = None  # the candidate build judged (None: none was stamped)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson_upper(mismatches: int, pairs: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The upper bound of the Wilson score interval of mismatches/pairs (1.0 with no pairs)."""
    return stats.wilson(mismatches, pairs, confidence)[1]


def _fmt(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def judge(endpoint: str, counts: Mapping[str, int], p: GateParams, criteria: Criteria,
          counted: Collection[str] | None = None) -> EndpointGate:
    """The verdict for one endpoint's counts over the window (pure). Errors and regressions
    fail through `verdict.judge_counts`, the decision every surface shares (`counted`: the
    signatures the report counts; mismatches of the others are noise); then the gate asks
    for `min_pairs` and a Wilson upper bound within the threshold before it passes."""
    pairs = counts.get("matches", 0) + counts.get("mismatches", 0)
    failed, mismatches, judged = judge_counts(endpoint, counts, criteria, p.max_mismatch_rate,
                                              counted)
    rate = mismatches / pairs if pairs else 0.0
    upper = wilson_upper(mismatches, pairs, p.confidence)
    limit = _fmt(p.max_mismatch_rate)
    verdict: Outcome
    if failed:
        verdict, reason = "fail", failed
    elif pairs < p.min_pairs:
        verdict = "inconclusive"
        reason = f"{endpoint}: {pairs} pairs in the window, fewer than min_pairs={p.min_pairs}"
    elif rate > p.max_mismatch_rate:
        verdict = "inconclusive"
        reason = (f"{endpoint}: mismatch rate {_fmt(rate)} ({mismatches}/{pairs}) is above "
                  f"{limit} but not a regression yet ({judged.label.replace('_', ' ')}: "
                  f"p={judged.p_value:.3g}); more pairs needed")
    elif upper <= p.max_mismatch_rate:
        verdict = "pass"
        reason = (f"{endpoint}: mismatch rate {_fmt(rate)} ({mismatches}/{pairs}), upper bound "
                  f"{_fmt(upper)} at {p.confidence:.0%} confidence, within {limit}")
    else:
        verdict = "inconclusive"
        reason = (f"{endpoint}: mismatch rate {_fmt(rate)} ({mismatches}/{pairs}) is within "
                  f"{limit} but its {p.confidence:.0%} upper bound {_fmt(upper)} is not; "
                  f"more pairs needed")
    return EndpointGate(endpoint, pairs, mismatches, counts.get("errors", 0), round(rate, 6),
                        round(upper, 6), verdict, reason, counts.get("cand_errors", 0),
                        diffq.error_kinds(counts), judged.label)


def evaluate(counts: Mapping[str, Mapping[str, int]], p: GateParams, criteria: Criteria,
             endpoint: str | None = None,
             counted: Mapping[str, Collection[str]] | None = None) -> GateResult:
    """The gate over per-endpoint window counts {endpoint: {matches, mismatches, errors, ...}}.

    With `endpoint`, that endpoint alone (no pairs: inconclusive). Without, every endpoint
    with pairs in the window; the verdict is the worst of theirs (fail > inconclusive > pass)."""
    names = [endpoint] if endpoint is not None else sorted(
        n for n, c in counts.items() if c.get("pairs", 0))
    gates = [judge(name, counts.get(name, {}), p, criteria,
                   None if counted is None else counted.get(name, ())) for name in names]
    pairs = sum(g.pairs for g in gates)
    mismatches = sum(g.mismatches for g in gates)
    if not gates:
        verdict: Outcome = "inconclusive"
        reason = "no comparisons in the window"
    else:
        worst = max(gates, key=lambda g: SEVERITY[g.verdict])
        verdict, reason = worst.verdict, worst.reason
        if verdict == "pass" and len(gates) > 1:
            reason = f"all {len(gates)} endpoints pass"
    if endpoint is not None and pairs == 0 and counts and endpoint not in counts:
        reason += f" (endpoints with pairs: {', '.join(sorted(counts)[:10])})"
    return GateResult(
        verdict=verdict, reason=reason, pairs=pairs, mismatches=mismatches,
        errors=sum(g.errors for g in gates),
        rate=round(mismatches / pairs, 6) if pairs else 0.0,
        wilson_upper=round(wilson_upper(mismatches, pairs, p.confidence), 6),
        window=f"{p.minutes}m", max_mismatch_rate=p.max_mismatch_rate, min_pairs=p.min_pairs,
        confidence=p.confidence, max_error_rate=criteria.max_error_rate,
        candidate_errors=sum(g.candidate_errors for g in gates), endpoint=endpoint,
        endpoints=gates)


def window_counts(r: Redis, minutes: int, now_minute: int | None = None,
                  build: str | None = None) -> dict[str, dict[str, int]]:
    """Per endpoint of one candidate build (default: the newest): its per-minute buckets of
    the last `minutes` minutes (the current one included), summed."""
    now = store.now_minute() if now_minute is None else now_minute
    stored = builds.of_build(store.endpoint_names(r), builds.select(r, build))
    totals = store.window_totals(r, list(stored.values()), range(now - minutes + 1, now + 1))
    return {name: totals[key] for name, key in stored.items() if key in totals}


def run(r: Redis, p: GateParams, criteria: Criteria, endpoint: str | None = None,
        build: str | None = None) -> GateResult:
    chosen = builds.select(r, build)
    result = evaluate(window_counts(r, p.minutes, build=chosen), p, criteria, endpoint,
                      data.counted_signatures(r, criteria, chosen))
    result.build = chosen or None
    return result


def http_status(result: GateResult, p: GateParams) -> int:
    if result.verdict == "inconclusive" and p.inconclusive != "hold":
        return HTTP_STATUS[p.inconclusive]
    return HTTP_STATUS[result.verdict]


def params_from(values: Mapping[str, Any], defaults: GateParams | None = None) -> GateParams:
    """GateParams from query parameters or Flagger metadata (strings); errors name the key."""
    d = defaults or GateParams()
    inconclusive = str(values.get("inconclusive", d.inconclusive))
    if inconclusive not in INCONCLUSIVE_AS:
        raise ConfigError("inconclusive", f"expected one of {', '.join(INCONCLUSIVE_AS)}",
                          inconclusive)
    window = parse_duration("window", values["window"]) if "window" in values else d.window
    if window > MAX_WINDOW:
        raise ConfigError("window", "must be at most 24h (the per-minute counters' reach)",
                          values.get("window"))
    return GateParams(
        window=window,
        max_mismatch_rate=ranged(float, 0.0, 1.0)(
            "max_mismatch_rate", values.get("max_mismatch_rate", d.max_mismatch_rate)),
        min_pairs=ranged(int, 1)("min_pairs", values.get("min_pairs", d.min_pairs)),
        confidence=ranged(float, 0.5, 0.9999)(
            "confidence", values.get("confidence", d.confidence)),
        inconclusive=inconclusive)


# ---- HTTP: GET/POST /api/v1/gate (add_routes wires them into an aiohttp application) ----------

async def _answer(request: web.Request, values: Mapping[str, Any]) -> web.Response:
    try:
        p = params_from(values)
    except ConfigError as exc:
        return web.json_response({"error": str(exc), "parameter": exc.key}, status=400)
    endpoint, build = values.get("endpoint") or None, values.get("build") or None
    for key, value in (("endpoint", endpoint), ("build", build)):
        if value is not None and not isinstance(value, str):
            return web.json_response({"error": f"{key}: expected a string", "parameter": key},
                                     status=400)
    r = request.app[REDIS]
    criteria = Criteria.from_config(request.app[CONFIG])
    result = await asyncio.get_running_loop().run_in_executor(None, run, r, p, criteria, endpoint,
                                                              build)
    return web.json_response(result.to_dict(), status=http_status(result, p))


async def handle_get(request: web.Request) -> web.Response:
    """GET /api/v1/gate?endpoint=…&window=5m&max_mismatch_rate=0.01&min_pairs=100"""
    return await _answer(request, request.query)


async def handle_post(request: web.Request) -> web.Response:
    """POST /api/v1/gate with Flagger's webhook payload; the gate's parameters are taken from
    `metadata` (Flagger sends them as strings), then from the query string."""
    try:
        payload = await request.json()
    except ValueError:
        return web.json_response({"error": "body: expected a JSON object (Flagger's webhook "
                                           "payload)", "parameter": "body"}, status=400)
    metadata = payload.get("metadata") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or not isinstance(metadata, (dict, type(None))):
        return web.json_response({"error": "body: expected {\"name\", \"namespace\", \"phase\", "
                                           "\"metadata\": {...}}", "parameter": "metadata"},
                                 status=400)
    return await _answer(request, {**request.query, **(metadata or {})})


def add_routes(app: web.Application) -> None:
    """Serve the gate on the report server: GET and POST /api/v1/gate (its Redis app key)."""
    app.router.add_get("/api/v1/gate", handle_get)
    app.router.add_post("/api/v1/gate", handle_post)


# ---- CLI: `diffsvc gate` ----------------------------------------------------------------------

def command(r: Redis, p: GateParams, criteria: Criteria, endpoint: str | None,
            as_json: bool, build: str | None = None) -> int:
    """Print the gate's answer; exit status 0 pass, 1 fail, 2 inconclusive."""
    result = run(r, p, criteria, endpoint, build)
    if as_json:
        print(json.dumps(result.to_dict()))
    else:
        for g in result.endpoints:
            print(f"{g.verdict:<12} {g.endpoint}: {g.mismatches}/{g.pairs} pairs mismatched "
                  f"({g.rate:.2%}, upper bound {g.wilson_upper:.2%}), {g.errors} errors, "
                  f"{g.candidate_errors} against the candidate")
        print(f"{result.verdict.upper()}: {result.reason}")
    return EXIT_CODES[result.verdict]
