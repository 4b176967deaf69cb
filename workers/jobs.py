"""RQ job functions. Module-level, they take exchange ids; the worker process configures
them once (`configure`) with the compiled rules."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

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
from diffsvc.storage import examples, pipelined, rulestore, store, volatility

log = logging.getLogger("diffsvc.worker")

CHUNK = 50  # pairs compared while the next chunk loads and the one before is recorded
GIL_SWITCH_INTERVAL = 0.0005  # seconds; see workers.main.run_one


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


@dataclass
class _Chunk:
    """The comparisons of one chunk of a batch, and what recording them needs."""

    results: list[Comparison] = field(default_factory=list)
    latencies: dict[str, tuple[float, float]] = field(default_factory=dict)
    noise: dict[str, list[FieldDiff] | None] = field(default_factory=dict)  # vs secondary
    candidate_errors: dict[str, str] = field(default_factory=dict)  # id -> error kind
    missing: int = 0


@dataclass
class _Batch:
    """What a batch gathers across its chunks, recorded once at its end."""

    durations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, set[str]] = field(default_factory=dict)  # endpoint -> raw targets
    observed: list[volatility.Observation] = field(default_factory=list)  # primary's values
    # where the candidate differed


def _compare_chunk(ids: list[str], exchanges: list[Exchange | None], ctx: WorkerContext,
                   batch: _Batch) -> _Chunk:
    out = _Chunk()
    for exchange_id, exchange in zip(ids, exchanges, strict=True):
        if exchange is None:  # expired before a worker got to it
            out.missing += 1
            continue
        if not (exchange.primary.failure or exchange.candidate.failure):  # a failed call's
            out.latencies[exchange_id] = (exchange.primary.elapsed_ms,     # time is no latency
                                          exchange.candidate.elapsed_ms)
        pair_started = time.perf_counter()
        try:
            verdict = compare(exchange, ctx.ruleset, ctx.max_body, ctx.origins)
            verdict.build = exchange.build
            if exchange.secondary is not None:
                out.noise[exchange_id] = compare_secondary(exchange, ctx.ruleset, ctx.max_body,
                                                           ctx.origins)
            out.results.append(verdict)
            batch.observed += volatility.observations(exchange, verdict)
            if verdict.verdict == "error" and (kind := candidate_failure(exchange, ctx.max_body)):
                out.candidate_errors[exchange_id] = kind
        except Exception as exc:  # a bug must cost one verdict, never the batch
            log.exception("comparison of %s failed", exchange_id)
            req = exchange.request
            endpoint = ctx.ruleset.endpoint(req.method, req.path, req.query)
            out.results.append(Comparison(exchange_id, endpoint, "error",
                                          error=f"internal error: {type(exc).__name__}: {exc}",
                                          rules_digest=ctx.ruleset.digest, build=exchange.build))
        DURATION.observe(batch.durations, (time.perf_counter() - pair_started) * 1000)
        if ctx.run is not None:
            out.results[-1] = replace(out.results[-1],
                                      endpoint=run_endpoint(ctx.run, out.results[-1].endpoint))
        seen = batch.examples.setdefault(out.results[-1].endpoint, set())
        if len(seen) < examples.EXAMPLES_KEPT:
            seen.add(exchange.request.target)
    return out


def _record_args(chunk: _Chunk, ttl: float) -> list[Any]:
    return store.record_args(chunk.results, ttl, chunk.latencies, chunk.noise,
                             chunk.candidate_errors)


def compare_exchanges(r: Redis, ids: list[str], ctx: WorkerContext) -> dict[str, int]:
    """Load, compare and count a batch; returns counts of verdicts (and `missing`).

    Pipelined in chunks of CHUNK without threads (`storage.pipelined`): the next chunk's
    MGET is sent before this one is compared and its reply read after, and a compared
    chunk's record script runs in Redis while the next is compared. The job ends once every
    chunk is recorded: a failed record fails the job, which RQ runs again (counting is
    idempotent per exchange id)."""
    started = time.perf_counter()
    ctx.refresh_rules(r)
    batch = _Batch()
    parts = [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]
    loader, recorder = pipelined.Loader(r), pipelined.Recorder(r)
    compared = missing = 0
    try:
        if parts:
            loader.send(parts[0])
        for k, part in enumerate(parts):
            exchanges = loader.read()
            if k + 1 < len(parts):
                loader.send(parts[k + 1])
            chunk = _compare_chunk(part, exchanges, ctx, batch)
            compared, missing = compared + len(chunk.results), missing + chunk.missing
            recorder.send(_record_args(chunk, ctx.retention))
        counted = recorder.finish()  # every record done (or its error raised)
    finally:
        loader.close()
        recorder.close()
    examples.record(r, batch.examples, ctx.retention)
    volatility.record(r, batch.observed, ctx.retention)
    store.incr_worker(r, batch.durations)  # the comparison-duration histogram
    ctx.batches += 1
    ctx.pairs += compared
    counts = {"compared": compared, "counted": counted, "missing": missing}
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



def compare_batch(ids: list[str]) -> dict[str, int]:
    """The RQ job: compare the exchanges with these ids and count the verdicts."""
    job = get_current_job()
    assert job is not None, "compare_batch runs inside an RQ worker"
    return compare_exchanges(job.connection, ids, context())
