"""RQ job functions. Module-level, they take exchange ids; the worker process configures
them once (`configure`) with the compiled rules."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, replace

from redis import Redis
from rq import get_current_job

from diffsvc import config
from diffsvc.config import Config
from diffsvc.core.codecs import decode
from diffsvc.core.compare import compare, compare_secondary
from diffsvc.core.histograms import DURATION
from diffsvc.core.models import Comparison, Exchange, FieldDiff
from diffsvc.core.rules import RuleSet
from diffsvc.core.selfref import Origins
from diffsvc.errors import DecodeError
from diffsvc.storage import rulestore, store, volatility

log = logging.getLogger("diffsvc.worker")


@dataclass
class WorkerContext:
    ruleset: RuleSet
    max_body: int
    retention: float
    origins: Origins | None = None  # the upstreams' own origins, replaced before comparing
    rules_version: int = 0  # of the UI-added rules (rulestore) that `ruleset` includes
    run: str | None = None  # replay --run NAME: endpoints are named "[NAME] METHOD /path"
    batches: int = 0  # done by this process (its progress line)
    pairs: int = 0

    def refresh_rules(self, r: Redis) -> None:
        """Rebuild the rules when the UI-added ones changed (one GET per batch)."""
        current = rulestore.version(r)
        if current != self.rules_version:
            self.ruleset = self.ruleset.with_extra(rulestore.extra(rulestore.list_rules(r)))
            self.rules_version = current


_context: WorkerContext | None = None


def configure(cfg: Config, run: str | None = None) -> WorkerContext:
    global _context
    origins = (Origins.of(cfg.primary, cfg.candidate, cfg.secondary)
               if cfg.self_references else None)
    if cfg.version_header:  # the header naming the candidate's build differs by design
        cfg = dataclasses.replace(cfg, ignore={**cfg.ignore, "headers": [
            *cfg.ignore["headers"], cfg.version_header]})
    _context = WorkerContext(RuleSet.from_config(cfg), cfg.max_body, cfg.retention, origins,
                             run=run)
    return _context


def run_endpoint(run: str, endpoint: str) -> str:
    """The name a replay run's endpoint is counted under, apart from other traffic."""
    return f"[{run}] {endpoint}"


def context() -> WorkerContext:
    if _context is None:  # a plain `rq worker` started without diffsvc: read the environment
        return configure(config.load())
    return _context


def compare_exchanges(r: Redis, ids: list[str], ctx: WorkerContext) -> dict[str, int]:
    """Load, compare and count a batch; returns counts of verdicts (and `missing`)."""
    started = time.perf_counter()
    ctx.refresh_rules(r)
    results: list[Comparison] = []
    latencies: dict[str, tuple[float, float]] = {}
    missing = 0
    durations: Counter[str] = Counter()
    noise: dict[str, list[FieldDiff] | None] = {}  # primary vs secondary, when there is one
    examples: dict[str, set[str]] = {}  # endpoint -> a few raw request targets
    candidate_errors: dict[str, str] = {}  # exchange id -> error kind, against the candidate
    observed: list[volatility.Observation] = []  # primary's values where the candidate differed
    for exchange_id, exchange in zip(ids, store.load_exchanges(r, ids), strict=True):
        if exchange is None:  # expired before a worker got to it
            missing += 1
            continue
        if not (exchange.primary.failure or exchange.candidate.failure):  # a failed call's
            latencies[exchange_id] = (exchange.primary.elapsed_ms,         # time is no latency
                                      exchange.candidate.elapsed_ms)
        pair_started = time.perf_counter()
        try:
            verdict = compare(exchange, ctx.ruleset, ctx.max_body, ctx.origins)
            verdict.build = exchange.build
            if exchange.secondary is not None:
                noise[exchange_id] = compare_secondary(exchange, ctx.ruleset, ctx.max_body,
                                                       ctx.origins)
            results.append(verdict)
            observed += volatility.observations(exchange, verdict)
            if verdict.verdict == "error" and (kind := candidate_failure(exchange, ctx.max_body)):
                candidate_errors[exchange_id] = kind
        except Exception as exc:  # a bug must cost one verdict, never the batch
            log.exception("comparison of %s failed", exchange_id)
            req = exchange.request
            endpoint = ctx.ruleset.endpoint(req.method, req.path, req.query)
            results.append(Comparison(exchange_id, endpoint, "error",
                                      error=f"internal error: {type(exc).__name__}: {exc}",
                                      rules_digest=ctx.ruleset.digest, build=exchange.build))
        DURATION.observe(durations, (time.perf_counter() - pair_started) * 1000)
        if ctx.run is not None:
            results[-1] = replace(results[-1], endpoint=run_endpoint(ctx.run, results[-1].endpoint))
        seen = examples.setdefault(results[-1].endpoint, set())
        if len(seen) < store.EXAMPLES_KEPT:
            seen.add(exchange.request.target)
    counted = store.record_comparisons(r, results, ctx.retention, latencies, noise,
                                       candidate_errors)
    store.record_examples(r, examples, ctx.retention)
    volatility.record(r, observed, ctx.retention)
    _record_durations(r, durations)
    ctx.batches += 1
    ctx.pairs += len(results)
    counts = {"compared": len(results), "counted": counted, "missing": missing}
    log.debug("batch of %d in %.1f ms: %s", len(ids), (time.perf_counter() - started) * 1000,
              counts)
    return counts


def candidate_failure(exchange: Exchange, max_body: int) -> str | None:
    """The error kind that counts against the candidate: its call failed (or its body could
    not be decoded, `undecodable`) while primary answered. None when primary failed too."""
    if exchange.primary.failure:
        return None
    if exchange.candidate.failure:
        return exchange.candidate.failure
    try:
        decode(exchange.candidate, max_body)
    except DecodeError:
        return "undecodable"
    return None


def _record_durations(r: Redis, durations: Counter[str]) -> None:
    """The batch's comparison-duration histogram: one HINCRBY pipeline per batch."""
    store.incr_worker(r, durations)


def compare_batch(ids: list[str]) -> dict[str, int]:
    """The RQ job: compare the exchanges with these ids and count the verdicts."""
    job = get_current_job()
    assert job is not None, "compare_batch runs inside an RQ worker"
    return compare_exchanges(job.connection, ids, context())
