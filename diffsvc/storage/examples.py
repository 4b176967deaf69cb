"""A few raw request targets per endpoint: what each folded template (`GET /db/{id}.json`)
stands for, shown beside it in the report."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from redis import Redis

from diffsvc.storage import keys

EXAMPLES_KEPT = 5  # raw request targets kept per endpoint


def record(r: Redis, examples: Mapping[str, Iterable[str]], ttl: float) -> None:
    """Keep a few raw request targets of each endpoint (what its template stands for): the
    same EXAMPLES_KEPT of all those seen (the highest by a stable hash), so the set is
    bounded, varied and written once per batch."""
    if not examples:
        return
    with r.pipeline(transaction=False) as pipe:
        for endpoint, targets in examples.items():
            key = keys.examples(endpoint)
            pipe.zadd(key, {t: zlib.crc32(t.encode("utf-8", "surrogateescape")) for t in targets})
            pipe.zremrangebyrank(key, 0, -EXAMPLES_KEPT - 1)
            pipe.expire(key, int(ttl))
        pipe.execute()


def load(r: Redis, endpoints: Sequence[str]) -> dict[str, list[str]]:
    """The raw request targets kept for each endpoint, sorted (one round trip)."""
    with r.pipeline(transaction=False) as pipe:
        for endpoint in endpoints:
            pipe.zrange(keys.examples(endpoint), 0, -1)
        found = cast("list[list[bytes]]", pipe.execute())
    return {e: sorted(t.decode() for t in targets) for e, targets in zip(endpoints, found,
                                                                         strict=True)}
