"""RQ jobs: one job carries a batch of exchange ids, enqueued in the same pipeline as the
writes of those exchanges."""

from __future__ import annotations

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry

from diffsvc.storage import keys

COMPARE_FUNC = "workers.jobs.compare_batch"
JOB_TIMEOUT = 300
RETRIES = 3  # a batch that failed (Redis lost mid-job) runs again; counting is idempotent


def queue(connection: Redis, run: str | None = None) -> Queue:
    """The shared queue of comparison jobs, or a replay run's own (only its worker reads it)."""
    return Queue(keys.queue_name(run), connection=connection)


def enqueue_batch(q: Queue, ids: list[str], pipeline: Pipeline | None = None) -> None:
    q.enqueue_call(COMPARE_FUNC, args=(ids,), result_ttl=0, failure_ttl=7 * 86400,
                   timeout=JOB_TIMEOUT, pipeline=pipeline, retry=Retry(max=RETRIES))


def depth(connection: Redis) -> int:
    return queue(connection).count
