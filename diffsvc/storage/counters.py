"""Every counter the metrics endpoint exposes, read from Redis in one round trip at scrape
time (workers fork and gateways are many: the counts live in Redis, not in a process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis import Redis

from diffsvc.storage import builds, jobqueue, keys, store


@dataclass
class Snapshot:
    """Every counter the metrics expose, as read from Redis in one round trip."""

    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    fields: dict[str, dict[str, int]] = field(default_factory=dict)
    gateway: dict[str, int] = field(default_factory=dict)
    worker: dict[str, int] = field(default_factory=dict)
    queue_depth: int = 0


def read_snapshot(r: Redis, build: str | None = None) -> Snapshot:
    """The counters; per endpoint those of one candidate build (default: the newest)."""
    stored = builds.of_build(store.endpoint_names(r), builds.select(r, build))
    names = list(stored)
    with r.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(keys.totals(stored[name]))
            pipe.hgetall(keys.fields(stored[name]))
        pipe.hgetall(keys.GATEWAY_COUNTERS)
        pipe.hgetall(keys.WORKER_COUNTERS)
        pipe.llen(jobqueue.queue(r).key)
        replies = pipe.execute()
    snap = Snapshot(gateway=store.ints(replies[-3]), worker=store.ints(replies[-2]),
                    queue_depth=int(replies[-1]))
    for i, name in enumerate(names):
        snap.totals[name] = store.ints(replies[2 * i])
        snap.fields[name] = store.ints(replies[2 * i + 1])
    return snap
