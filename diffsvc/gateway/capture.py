"""Batched writes, off the client's path: Capture buffers finished exchanges and a writer
thread writes them to Redis in pipelined batches; a dead Redis costs counted exchanges,
never a client error.

The event loop's share is one `deque.append` per exchange (and an Event.set per full
batch): no task, future or executor hand-off per flush. The thread holds the GIL only to
redact, frame and pack a batch (one buffer per batch, joined once; store.for_batches) and
releases it for every socket call; the GIL switch interval is lowered so that the busy
event loop hands it over within 0.2 ms. The buffer is bounded (20 batches): beyond it an
exchange is dropped and counted (`capture_dropped`), so memory stays flat whatever Redis
does."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from diffsvc.config import Config
from diffsvc.core.models import Exchange
from diffsvc.core.redact import Redactor
from diffsvc.storage import jobqueue, store

log = logging.getLogger("diffsvc.capture")
COUNTERS_INTERVAL = 0.5  # seconds between writes of the gateway's counter deltas
GIL_SWITCH_INTERVAL = 0.0002  # seconds; see the module's docstring
BUFFERED_BATCHES = 20


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
        self._buffer: deque[Exchange] = deque()
        self._max_buffer = cfg.batch_size * BUFFERED_BATCHES
        self._batch_size = cfg.batch_size
        self._wakeup = threading.Event()
        self._thread = threading.Thread(target=self._run, name="diffsvc-capture", daemon=True)
        self._closing = False
        self._flushed_counters: Counter[str] = Counter()
        self._redactor = Redactor.from_config(cfg)  # secrets never reach Redis

    def add(self, exchange: Exchange) -> None:
        """On the event loop: buffer one exchange (or count it dropped when full)."""
        buffered = len(self._buffer)
        if buffered >= self._max_buffer:
            self.counters["capture_dropped"] += 1
            return
        self._buffer.append(exchange)
        if buffered + 1 == self._batch_size:
            self._wakeup.set()

    def start(self) -> None:
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL))
        self._thread.start()

    async def close(self) -> None:
        """Write what is buffered and the last counter deltas, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._thread.is_alive():
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    def _run(self) -> None:
        """The writer thread: what is buffered, when a batch is full or every
        flush_interval; counter deltas every COUNTERS_INTERVAL; on close, everything left."""
        counters_due = 0.0
        while True:
            self._wakeup.wait(self.cfg.flush_interval)
            self._wakeup.clear()
            closing = self._closing
            batch = [self._buffer.popleft() for _ in range(len(self._buffer))]
            counts: Counter[str] = Counter()
            now = time.monotonic()
            if closing or now >= counters_due:  # the subtraction is not free
                counters_due = now + COUNTERS_INTERVAL
                counts = self.counters.copy() - self._flushed_counters
            self._write(batch, counts)
            if closing and not self._buffer:
                self._write([], self.counters.copy() - self._flushed_counters)  # the last counts
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
            for start in range(0, len(batch), self._batch_size):
                part = batch[start : start + self._batch_size]
                store.write_exchanges(r, q, part, self.cfg.retention, self.cfg.capture_compress)
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
