"""Bounded shadow work and batched writes, off the client's path.

Shadower runs the candidate (and secondary) calls as tracked tasks, at most `max_inflight`
at once; beyond that an exchange is dropped and counted, never queued. Capture buffers
finished exchanges and writes them to Redis in pipelined batches from one flusher task; a
dead Redis costs counted exchanges, never a client error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from . import jobqueue, store, upstream
from .config import Config
from .models import Exchange, Reply, Request
from .promhist import LATENCY
from .redact import Redactor

log = logging.getLogger("diffsvc.capture")
COUNTERS_INTERVAL = 0.5  # seconds between writes of the gateway's counter deltas
SHADOW_CONNECT_BACKOFF = 0.2  # a shadow upstream refusing connections is retried this often
GIL_SWITCH_INTERVAL = 0.0002  # seconds; see Capture.start


class Capture:
    """Buffers exchanges and writes them in batches; counts what it could not write."""

    def __init__(self, cfg: Config, redis_factory: Callable[[], Redis], counters: Counter[str]):
        self.cfg = cfg
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
        written = 0
        batch = self._redactor.redact_all(batch, self.counters)
        try:
            if self._redis is None:
                r = store.for_batches(self._redis_factory())
                self._redis = (r, jobqueue.queue(r))
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


class BoundedTasks:
    """Tracked background tasks, at most `limit` at once: beyond it a task is not started
    and `shadow_dropped` is counted, never queued. `drain` lets them finish, then cancels."""

    def __init__(self, limit: int, counters: Counter[str]) -> None:
        self.limit = limit
        self.counters = counters
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, fn: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        if len(self.tasks) >= self.limit:
            self.counters["shadow_dropped"] += 1
            return
        task = asyncio.create_task(fn(*args))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, timeout: float) -> None:
        """Let in-flight tasks finish (up to `timeout`), then cancel the rest."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            self.counters["shadow_cancelled"] += len(pending)
            await asyncio.gather(*pending, return_exceptions=True)


class Shadower:
    """Sends the copy of a request to candidate (and secondary), bounded and tracked."""

    def __init__(self, cfg: Config, clients: upstream.Clients, capture: Capture,
                 counters: Counter[str]):
        self.cfg = cfg
        self.clients = clients
        self.capture = capture
        self.counters = counters
        self.work = BoundedTasks(cfg.max_inflight, counters)

    def submit(self, request: Request, primary: Reply, client_ip: str | None) -> None:
        self.work.start(self._run, request, primary, client_ip)

    async def _call(self, base_url: str, request: Request, client_ip: str | None) -> Reply:
        headers = upstream.forward_headers(request, client_ip, shadow=True)
        reply = await self.clients.call(base_url, request, headers, self.cfg.shadow_timeout,
                                        self.cfg.max_body, backoff=SHADOW_CONNECT_BACKOFF)
        self.counters["shadow_error" if reply.error else "shadow_ok"] += 1
        if not reply.error:
            side = "candidate" if base_url == self.cfg.candidate else "secondary"
            LATENCY[side].observe(self.counters, reply.elapsed_ms)
        return reply

    async def _run(self, request: Request, primary: Reply, client_ip: str | None) -> None:
        assert self.cfg.candidate is not None
        calls = [self._call(self.cfg.candidate, request, client_ip)]
        if self.cfg.secondary:
            calls.append(self._call(self.cfg.secondary, request, client_ip))
        replies = await asyncio.gather(*calls)
        self.capture.add(Exchange(request, primary, replies[0],
                                  replies[1] if len(replies) > 1 else None))

    async def drain(self, timeout: float) -> None:
        await self.work.drain(timeout)
