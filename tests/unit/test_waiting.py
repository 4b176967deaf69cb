"""Waiting for Redis logs each change of state once: unreachable (with the reason), reachable
again; a refused password is raised, not waited for."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from diffsvc.storage import waiting


def test_each_change_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    state = waiting.RedisState("redis://:secret@10.0.0.7:6380/2", logging.getLogger("t"), "worker")
    state.reachable()  # the first success is not news
    for _ in range(3):
        state.unreachable(RedisConnectionError("Connection refused"), 10)
    state.reachable()
    state.reachable()
    state.unreachable(RedisConnectionError("Connection reset"), 10)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "worker: Redis at 10.0.0.7:6380/2 unreachable (Connection refused); retrying with "
        "backoff (up to every 10s)",
        "worker: Redis at 10.0.0.7:6380/2 is reachable again",
        "worker: Redis at 10.0.0.7:6380/2 unreachable (Connection reset); retrying with "
        "backoff (up to every 10s)"]
    assert not any("secret" in m for m in messages)


def test_a_refused_password_is_not_waited_for() -> None:
    state = waiting.RedisState("redis://127.0.0.1:1/0", logging.getLogger("t"), "worker")
    with pytest.raises(AuthenticationError):
        state.unreachable(AuthenticationError("invalid password"), 10)


def test_backoff_doubles_up_to_the_most() -> None:
    delays = waiting.backoff(0.2, 1.0)
    assert [delays() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
