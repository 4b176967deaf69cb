"""Batched writes, off the client's path: Capture buffers finished exchanges and writes them
to Redis in pipelined batches from one flusher task; a dead Redis costs counted exchanges,
never a client error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from diffsvc.config import Config
from diffsvc.core.models import Exchange
from diffsvc.core.redact import Redactor
from diffsvc.storage import jobqueue, store

log = logging.getLogger("diffsvc.capture")
COUNTERS_INTERVAL = 0.5  # seconds between writes of the gateway's counter deltas
GIL_SWITCH_INTERVAL = 0.0002  # seconds; see Capture.start


class Capture:
    """Buffers exchanges and writes them in batches; counts what it could not write."""

    def __init__(self, cfg: Config, redis_factory: Callable[[], Redis], counters: Counter[str],
                 *, run: str | None = None):
        self.cfg = cfg
        self.run = run  # replay --run NAME: jobs go to that run's own queue
        self.counters = counters
        self._redis_factory = redis_factory
        self._redis: tuple[Redis, Queue] | None = None
        self._failing = False
        self._buffer: list[Exchange] = []
        self._max_buffer = cfg.batch_size * 20
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diffsvc-capture")
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._flushed_counters: Counter[str] = Counter()
        self._counters_due = 0.0  # counter deltas go to Redis at most every COUNTERS_INTERVAL
        self._redactor = Redactor.from_config(cfg)  # secrets never reach Redis

    def add(self, exchange: Exchange) -> None:
        if len(self._buffer) >= self._max_buffer:
            self.counters["capture_dropped"] += 1
            return
        self._buffer.append(exchange)
        if len(self._buffer) >= self.cfg.batch_size:
            self._wakeup.set()

    def start(self) -> None:
        # The writer thread releases the GIL around every socket send to Redis; with the
        # event loop always runnable it then waits up to the switch interval (5 ms by default)
        # to get it back. With one send per batch (store.for_batches) and 0.2 ms, every
        # exchange is stored at full load (bench/README.md); before, over half were dropped.
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL))
        self._flusher = asyncio.create_task(self._run(), name="diffsvc-capture-flusher")

    async def close(self) -> None:
        """Write what is buffered, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._flusher:
            await self._flusher
            rest = self.counters - self._flushed_counters  # what the last write itself counted
            if rest:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._write,
                                                                 [], rest)
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.cfg.flush_interval)
            self._wakeup.clear()
            batch, self._buffer = self._buffer, []
            counts: Counter[str] = Counter()
            if self._closing or loop.time() >= self._counters_due:  # the subtraction is not free
                self._counters_due = loop.time() + COUNTERS_INTERVAL
                counts = self.counters - self._flushed_counters
            await loop.run_in_executor(self._executor, self._write, batch, counts)
            if self._closing and not self._buffer:
                return

    def _write(self, batch: list[Exchange], counts: Counter[str]) -> None:
        """In the writer thread: one pipelined round trip per batch, and counter deltas."""
        if not batch and not counts:
            return  # an idle flush touches no Redis, so it tells nothing of its state
        written = 0
        batch = self._redactor.redact_all(batch, self.counters)
        try:
            if self._redis is None:
                r = store.for_batches(self._redis_factory())
                self._redis = (r, jobqueue.queue(r, self.run))
            r, q = self._redis
            for start in range(0, len(batch), self.cfg.batch_size):
                part = batch[start : start + self.cfg.batch_size]
                store.write_exchanges(r, q, part, self.cfg.retention)
                written += len(part)
            self.counters["captured"] += written
            written = -1  # counted: a failure of the counter write below must not count again
            if counts:
                store.incr_gateway(r, dict(counts))
                self._flushed_counters.update(counts)
            if self._failing:
                self._failing = False
                log.warning("Redis is back: capturing again")
        except (RedisError, OSError) as exc:
            self._redis = None
            if written >= 0:
                self.counters["captured"] += written
                self.counters["capture_failed"] += len(batch) - written
            if not self._failing:  # log the transition, not every batch
                self._failing = True
                log.warning("cannot write to Redis (%s: %s): exchanges are counted as "
                            "capture_failed until it is back", type(exc).__name__, exc)
