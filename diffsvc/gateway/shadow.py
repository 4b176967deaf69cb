"""Bounded shadow work: Shadower runs the candidate (and secondary) calls as tracked tasks, at
most `max_inflight` at once; beyond that an exchange is dropped and counted, never queued."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from multidict import CIMultiDict

from diffsvc.config import Config
from diffsvc.core.histograms import LATENCY
from diffsvc.core.models import Exchange, Reply, Request, stamp
from diffsvc.gateway import upstream
from diffsvc.gateway.capture import Capture

SHADOW_CONNECT_BACKOFF = 0.2  # a shadow upstream refusing connections is retried this often


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

    def submit(self, request: Request, primary: Reply, client_ip: str | None,
               forwarded: CIMultiDict[str] | None = None) -> None:
        """`forwarded`: the headers primary was sent, when the shadow copy's are the same
        (then only the shadow header is added, not every header worked out again)."""
        self.work.start(self._run, request, primary, client_ip, forwarded)

    async def _call(self, base_url: str, request: Request, client_ip: str | None,
                    forwarded: CIMultiDict[str] | None) -> Reply:
        if forwarded is not None:
            headers = forwarded.copy()
            headers[upstream.SHADOW_HEADER] = "1"
        else:
            headers = upstream.forward_headers(request, client_ip, shadow=True,
                                               forward_host=self.cfg.forward_host)
        reply = await self.clients.call(base_url, request, headers, self.cfg.shadow_timeout,
                                        self.cfg.max_body, backoff=SHADOW_CONNECT_BACKOFF)
        self.counters["shadow_error" if reply.error else "shadow_ok"] += 1
        if not reply.error:
            side = "candidate" if base_url == self.cfg.candidate else "secondary"
            LATENCY[side].observe(self.counters, reply.elapsed_ms)
        return reply

    async def _run(self, request: Request, primary: Reply, client_ip: str | None,
                   forwarded: CIMultiDict[str] | None) -> None:
        assert self.cfg.candidate is not None
        if not self.cfg.secondary:  # no gather for one call: its futures cost 5% of the CPU
            candidate = await self._call(self.cfg.candidate, request, client_ip, forwarded)
            secondary = None
        else:
            candidate, secondary = await asyncio.gather(
                self._call(self.cfg.candidate, request, client_ip, forwarded),
                self._call(self.cfg.secondary, request, client_ip, forwarded))
        build = stamp(candidate, self.cfg.version_header, self.cfg.candidate_version)
        self.capture.add(Exchange(request, primary, candidate, secondary, build=build))

    async def drain(self, timeout: float) -> None:
        await self.work.drain(timeout)
