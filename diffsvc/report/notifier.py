"""Alerts without Grafana: when an endpoint fails over the window — the candidate's errors
above `max_error_rate`, or a regression whose mismatch rate crosses `notify.threshold`
(`verdict.judge_counts`, the gate's decision) — POST one JSON alert to `notify.webhook_url`,
and one more when it falls back (its resolution) — once per episode, however many requests
or evaluations happen.

The open episodes live in Redis (diffsvc.storage.alerts), claimed with HSETNX / HDEL, so several
report servers, or one restarted, still send each transition once. A transition whose POST
fails is released again and retried at the next evaluation. The payload has a `text` field,
so a Slack or Mattermost incoming webhook shows it as is."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import aiohttp
from aiohttp import web
from redis import Redis

from diffsvc.config import Config
from diffsvc.config.appkey import CONFIG
from diffsvc.report import data, gate
from diffsvc.report.appkeys import REDIS
from diffsvc.report.verdict import Criteria, judge_counts
from diffsvc.storage import alerts, waiting

log = logging.getLogger("diffsvc.notifier")

DELIVERY_TIMEOUT = 10.0
DELIVERY_ATTEMPTS = 3


@dataclass(frozen=True)
class Alert:
    status: Literal["firing", "resolved"]
    endpoint: str
    rate: float
    mismatches: int
    pairs: int
    candidate_errors: int
    threshold: float
    window: str
    at: float
    text: str

    def payload(self) -> dict[str, object]:
        return {"source": "diffsvc", **asdict(self)}


def transitions(counts: Mapping[str, Mapping[str, int]], open_: set[str], threshold: float,
                min_pairs: int, window: str, now: float, criteria: Criteria,
                counted: Mapping[str, Collection[str]] | None = None) -> list[Alert]:
    """Alerts to send for this evaluation (pure): endpoints failing (`verdict.judge_counts`:
    candidate errors, or a regression above the threshold) that have no open episode fire;
    open ones no longer failing resolve. An endpoint with fewer than `min_pairs` pairs
    production answered in the window neither fires nor resolves."""
    out = []
    for endpoint in sorted(set(counts) | open_):
        c = counts.get(endpoint, {})
        pairs = c.get("matches", 0) + c.get("mismatches", 0)
        candidate = c.get("cand_errors", 0)
        if pairs + candidate < min_pairs:
            continue
        failing, mismatches, _ = judge_counts(endpoint, c, criteria, threshold,
                                              None if counted is None else
                                              counted.get(endpoint, ()))
        rate = mismatches / pairs if pairs else 0.0
        shown = (f"mismatch rate {rate:.2%} ({mismatches}/{pairs} pairs, {candidate} candidate "
                 f"errors, last {window})")
        if failing and endpoint not in open_:
            out.append(Alert("firing", endpoint, round(rate, 6), mismatches, pairs, candidate,
                             threshold, window, now, f"diffsvc: {failing} (last {window})"))
        elif not failing and endpoint in open_:
            out.append(Alert("resolved", endpoint, round(rate, 6), mismatches, pairs, candidate,
                             threshold, window, now, f"diffsvc: {endpoint} {shown} is back "
                                                      f"within {threshold:.2%}"))
    return out


class Notifier:
    def __init__(self, cfg: Config, redis: Redis, session: aiohttp.ClientSession) -> None:
        assert cfg.notify_webhook_url is not None
        self.cfg = cfg
        self.url = cfg.notify_webhook_url
        self.redis = redis
        self.session = session
        self.minutes = max(1, round(cfg.notify_window / 60))
        self.criteria = Criteria.from_config(cfg)

    def _claim(self, alert: Alert) -> bool:
        """Take the transition in Redis; False if another notifier already did."""
        if alert.status == "firing":
            return alerts.claim_open(self.redis, alert.endpoint, json.dumps(alert.payload()))
        return alerts.claim_resolved(self.redis, alert.endpoint)

    def _release(self, alert: Alert, previous: bytes | None) -> None:
        if alert.status == "firing":
            alerts.forget(self.redis, alert.endpoint)
        elif previous is not None:
            alerts.restore(self.redis, alert.endpoint, previous)

    async def _post(self, alert: Alert) -> bool:
        for attempt in range(DELIVERY_ATTEMPTS):
            try:
                async with self.session.post(self.url, json=alert.payload(),
                                             timeout=aiohttp.ClientTimeout(DELIVERY_TIMEOUT)
                                             ) as resp:
                    if resp.status < 300:
                        return True
                    log.warning("webhook answered %d to the %s alert of %s", resp.status,
                                alert.status, alert.endpoint)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("webhook %s unreachable (%s: %s)", self.url, type(exc).__name__, exc)
            await asyncio.sleep(0.5 * 2**attempt)
        return False

    async def tick(self) -> list[Alert]:
        """One evaluation; returns the alerts this notifier delivered."""
        loop = asyncio.get_running_loop()
        counts = await loop.run_in_executor(None, gate.window_counts, self.redis, self.minutes)
        open_ = await loop.run_in_executor(None, alerts.open_episodes, self.redis)
        counted = await loop.run_in_executor(None, data.counted_signatures, self.redis,
                                             self.criteria)
        sent = []
        for alert in transitions(counts, set(open_), self.cfg.notify_threshold,
                                 self.cfg.notify_min_pairs, f"{self.minutes}m", time.time(),
                                 self.criteria, counted):
            if not await loop.run_in_executor(None, self._claim, alert):
                continue
            if await self._post(alert):
                sent.append(alert)
                log.warning("%s", alert.text)
            else:
                await loop.run_in_executor(None, self._release, alert, open_.get(alert.endpoint))
        return sent

    async def run(self) -> None:
        """Evaluate every notify.interval; while Redis is away, retry with backoff (from
        0.2 s up to the interval), logging its going and its coming back once each."""
        assert self.cfg.redis_url is not None
        state = waiting.RedisState(self.cfg.redis_url, log, "notifier")
        delays = waiting.backoff(most=self.cfg.notify_interval)
        while True:
            try:
                await self.tick()
            except waiting.DOWN as exc:
                state.unreachable(exc, self.cfg.notify_interval)
                await asyncio.sleep(delays())
                continue
            except Exception:  # a bug must not end the loop; logged with its traceback
                log.exception("notifier evaluation failed")
            else:
                state.reachable()
            delays = waiting.backoff(most=self.cfg.notify_interval)
            await asyncio.sleep(self.cfg.notify_interval)


def add_to(app: web.Application) -> None:
    """Run the notifier in the report server when `notify.webhook_url` is set."""
    async def running(app: web.Application) -> AsyncIterator[None]:
        cfg = app[CONFIG]
        if not cfg.notify_webhook_url:
            yield
            return
        session = aiohttp.ClientSession()
        task = asyncio.create_task(Notifier(cfg, app[REDIS], session).run(),
                                   name="diffsvc-notifier")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await session.close()

    app.cleanup_ctx.append(running)
