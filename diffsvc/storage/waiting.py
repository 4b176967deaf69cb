"""Waiting for Redis: workers, the report server and the notifier start without it and go on
when it comes, with backoff; each change of state (unreachable, reachable again) is logged
once, in one line. A refused password is not waited for: it will not fix itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from redis import Redis
from redis.exceptions import AuthenticationError, ConnectionError, TimeoutError

FIRST_DELAY = 0.2
MAX_DELAY = 10.0
DOWN = (ConnectionError, TimeoutError, OSError)


def where(url: str) -> str:
    """host:port/db of a Redis URL, without its password."""
    parts = urlsplit(url)
    db = parts.path.strip("/") or "0"
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{db}"


class RedisState:
    """Logs Redis going away and coming back, once per change, for one process part."""

    def __init__(self, url: str, log: logging.Logger, who: str) -> None:
        self.where = where(url)
        self.log = log
        self.who = who
        self.up: bool | None = None

    def reachable(self) -> None:
        if self.up is False:
            self.log.warning("%s: Redis at %s is reachable again", self.who, self.where)
        self.up = True

    def unreachable(self, exc: BaseException, retry: float) -> None:
        if isinstance(exc, AuthenticationError):
            raise exc
        if self.up is not False:
            self.log.warning("%s: Redis at %s unreachable (%s); retrying with backoff (up to "
                             "every %gs)", self.who, self.where, exc, retry)
        self.up = False


def check_password(r: Redis) -> None:
    """Raise now if Redis refuses the password; being unreachable is waited for later."""
    try:
        r.ping()
    except AuthenticationError:
        raise
    except DOWN:
        pass


def backoff(first: float = FIRST_DELAY, most: float = MAX_DELAY) -> Callable[[], float]:
    """The next delay on each call: first, doubled each time, at most `most`."""
    delay = first / 2

    def next_delay() -> float:
        nonlocal delay
        delay = min(delay * 2, most)
        return delay

    return next_delay


def wait_for(r: Redis, state: RedisState, *, stop: Callable[[], bool] = lambda: False,
             sleep: Callable[[float], None] = time.sleep) -> bool:
    """Ping until Redis answers (True) or `stop()` (False); a refused password raises."""
    delays = backoff()
    while not stop():
        try:
            r.ping()
        except DOWN as exc:
            state.unreachable(exc, MAX_DELAY)
            sleep(delays())
            continue
        state.reachable()
        return True
    return False


__all__ = ["DOWN", "RedisState", "backoff", "check_password", "wait_for", "where"]
