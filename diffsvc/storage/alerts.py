"""The notifier's open alert episodes: one hash, endpoint -> JSON of its open episode. A
transition is claimed with HSETNX / HDEL, so of several notifiers exactly one delivers it."""

from __future__ import annotations

from typing import cast

from redis import Redis

from diffsvc.storage import keys


def claim_open(r: Redis, endpoint: str, payload: str) -> bool:
    """Open an episode; False when another notifier already opened it."""
    return bool(r.hsetnx(keys.ALERTS, endpoint, payload))


def claim_resolved(r: Redis, endpoint: str) -> bool:
    """Close an episode; False when another notifier already closed it."""
    return bool(r.hdel(keys.ALERTS, endpoint))


def forget(r: Redis, endpoint: str) -> None:
    """Undo an open whose delivery failed, so the next evaluation tries again."""
    r.hdel(keys.ALERTS, endpoint)


def restore(r: Redis, endpoint: str, previous: bytes) -> None:
    """Undo a resolve whose delivery failed."""
    r.hset(keys.ALERTS, endpoint, previous)


def open_episodes(r: Redis) -> dict[str, bytes]:
    return {k.decode(): v for k, v in cast(dict[bytes, bytes], r.hgetall(keys.ALERTS)).items()}
