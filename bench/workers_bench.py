"""Worker throughput on the recorded pairs, next to the parse-only floor and naive deepdiff.

- parse floor: orjson.loads of both bodies, nothing else: no comparison can be cheaper;
- compare(): diffsvc's comparison (decode, ignore rules, canonical equality, walk/deepdiff);
- worker: the real path, one process: exchanges written to Redis in batches as the gateway
  writes them, then an RQ SimpleWorker in burst mode loads, compares and records them;
- naive: `DeepDiff(loads(a), loads(b))` on every pair, what a first version would do."""

from __future__ import annotations

import dataclasses
import time

import orjson
from deepdiff import DeepDiff
from redis import Redis

from diffsvc.config import Config
from diffsvc.core.compare import compare
from diffsvc.core.models import Exchange
from diffsvc.core.rules import RuleSet
from diffsvc.storage import jobqueue, store

from . import pairs


def _rate(n: int, fn: object) -> float:
    return _rates(n, fn)[0]


def _rates(n: int, fn: object) -> tuple[float, float]:
    """n per second of wall time, and per CPU-second of this process (every thread): the
    second holds steady on a shared machine."""
    started, cpu = time.perf_counter(), time.process_time()
    fn()  # type: ignore[operator]
    return n / (time.perf_counter() - started), n / (time.process_time() - cpu)


def parse_floor(exchanges: list[Exchange]) -> tuple[float, float]:
    bodies = [(e.primary.body, e.candidate.body) for e in exchanges]

    def run() -> None:
        for a, b in bodies:
            orjson.loads(a)
            orjson.loads(b)

    return _rates(len(bodies), run)


def compare_only(exchanges: list[Exchange], cfg: Config) -> float:
    ruleset = RuleSet.from_config(cfg)
    return _rate(len(exchanges), lambda: [compare(e, ruleset, cfg.max_body) for e in exchanges])


def naive(exchanges: list[Exchange], n: int = 100) -> float:
    subset = exchanges[:n]
    return _rate(len(subset), lambda: [DeepDiff(orjson.loads(e.primary.body),
                                                orjson.loads(e.candidate.body))
                                       for e in subset])


def worker_end_to_end(exchanges: list[Exchange], cfg: Config) -> tuple[float, float]:
    """pairs/s of one worker process draining a queue of recorded exchanges from Redis, and
    pairs per CPU-second of that process (Redis's own CPU is bench.capacity's)."""
    from workers import main

    assert cfg.redis_url
    r: Redis = store.connect(cfg.redis_url)
    r.flushdb()
    q = jobqueue.queue(r)
    for start in range(0, len(exchanges), cfg.batch_size):
        store.write_exchanges(r, q, exchanges[start:start + cfg.batch_size], cfg.retention)
    rate = _rates(len(exchanges), lambda: main.run_one(cfg, burst=True))
    counted = store.endpoint_stats(r)
    pairs_counted = sum(s["pairs"] for s in counted.values())
    if pairs_counted != len(exchanges):
        raise RuntimeError(f"worker counted {pairs_counted} of {len(exchanges)} pairs")
    r.flushdb()
    return rate


RUNS = 3  # each rate is the median of this many runs: the machine is shared, runs vary ±15%


def _median(rates: list[float]) -> float:
    return sorted(rates)[len(rates) // 2]


def run(redis_url: str, n: int) -> dict[str, float]:
    cfg = Config(redis_url=redis_url, ignore=pairs.IGNORE)
    exchanges = pairs.recorded(n)

    def fresh() -> list[Exchange]:
        """New ids per run: the recorded ids would be counted once only (idempotent counting)."""
        stamp = time.time_ns()
        return [dataclasses.replace(e, id=f"{e.id}-{stamp}") for e in exchanges]

    parse = [parse_floor(exchanges) for _ in range(RUNS)]
    compared = [compare_only(exchanges, cfg) for _ in range(RUNS)]
    worker = [worker_end_to_end(fresh(), cfg) for _ in range(RUNS)]
    return {
        "parse": _median([wall for wall, _ in parse]),
        "parse_cpu": _median([cpu for _, cpu in parse]),
        "compare": _median(compared),
        "worker": _median([wall for wall, _ in worker]),
        "worker_cpu": _median([cpu for _, cpu in worker]),
        "naive": naive(exchanges, max(20, min(200, n // 10))),
    }
