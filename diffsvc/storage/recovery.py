"""Abandoned comparison jobs are picked up again, within seconds rather than RQ's timeout.

A SimpleWorker killed with SIGKILL leaves its job in RQ's StartedJobRegistry, where RQ would
only notice it after the job timeout (and then move it to the failed registry, not re-run
it). Every diffsvc worker process therefore keeps a short-lived liveness key
(`keys.worker_alive(name)`, TTL `ALIVE_TTL`, refreshed every `BEAT_INTERVAL` by a thread)
and sweeps the registry at start and every `SWEEP_INTERVAL`: a started job whose worker has
no liveness key, or whose worker ran on this host under a pid that no longer exists, is
enqueued again with the same exchange ids. Running a batch twice is harmless: counting is
idempotent per exchange id (`store.record_comparisons` counts only when the comparison key
did not exist yet), so each exchange is still counted exactly once.

A plain `rq worker` keeps no liveness key: its jobs look abandoned and may run twice (and
still be counted once)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading

from redis import Redis
from redis.exceptions import RedisError
from rq.executions import Execution
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.utils import parse_composite_key

from diffsvc.storage import jobqueue, keys

log = logging.getLogger("diffsvc.recovery")

ALIVE_TTL = 10  # seconds a worker counts as alive after its last beat
BEAT_INTERVAL = 2.0
SWEEP_INTERVAL = 5.0
HOST = socket.gethostname()


def beat(r: Redis, worker_name: str) -> None:
    r.set(keys.worker_alive(worker_name), f"{HOST}:{os.getpid()}", ex=ALIVE_TTL)


def is_alive(r: Redis, worker_name: str) -> bool:
    raw = r.get(keys.worker_alive(worker_name))
    if raw is None:
        return False
    host, _, pid = (raw.decode() if isinstance(raw, bytes) else str(raw)).rpartition(":")
    if host == HOST and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def _worker_of(r: Redis, job_id: str, execution_id: str) -> str:
    with contextlib.suppress(Exception):
        name = Execution.fetch(execution_id, job_id, r).worker_name
        if name:
            return name
    with contextlib.suppress(Exception):
        return Job.fetch(job_id, connection=r).worker_name or ""
    return ""


def recover(r: Redis, queue_name: str = keys.QUEUE_NAME) -> int:
    """Enqueue again every started job whose worker is gone; how many were."""
    registry = StartedJobRegistry(queue_name, connection=r)
    recovered = 0
    for entry in r.zrange(registry.key, 0, -1):
        composite = entry.decode() if isinstance(entry, bytes) else str(entry)
        job_id, execution_id = parse_composite_key(composite)
        worker = _worker_of(r, job_id, execution_id)
        if worker and is_alive(r, worker):
            continue
        if not r.zrem(registry.key, composite):  # another worker recovered it first
            continue
        try:
            job = Job.fetch(job_id, connection=r)
        except Exception:  # the job expired with its data: nothing left to compare
            continue
        if job.func_name != jobqueue.COMPARE_FUNC or not job.args:
            continue
        jobqueue.enqueue_batch(jobqueue.queue(r), list(job.args[0]))
        with contextlib.suppress(RedisError):
            job.delete(remove_from_queue=False)
        recovered += 1
        log.warning("re-enqueued job %s (%d exchanges): its worker %s is gone", job_id,
                    len(job.args[0]), worker or "(unknown)")
    return recovered


class Keeper(threading.Thread):
    """Beats for one worker and sweeps for abandoned jobs, until `stop()`."""

    def __init__(self, r: Redis, worker_name: str) -> None:
        super().__init__(name="diffsvc-recovery", daemon=True)
        self.r = r
        self.worker_name = worker_name
        self._stop_event = threading.Event()

    def run(self) -> None:
        since_sweep = SWEEP_INTERVAL
        away = False  # log the transitions of Redis, not every failed beat
        while True:
            try:
                beat(self.r, self.worker_name)
                if since_sweep >= SWEEP_INTERVAL:
                    since_sweep = 0.0
                    recover(self.r)
                if away:
                    away = False
                    log.warning("recovery: Redis is back; liveness beats resume")
            except RedisError as exc:
                if not away:  # the worker reconnects by itself; we beat again when it is back
                    away = True
                    log.warning("recovery: cannot reach Redis (%s); liveness beats paused", exc)
            except Exception:
                log.exception("recovery sweep failed")
            if self._stop_event.wait(BEAT_INTERVAL):
                break
            since_sweep += BEAT_INTERVAL
        with contextlib.suppress(RedisError):
            self.r.delete(keys.worker_alive(self.worker_name))

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(5)
