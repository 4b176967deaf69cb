"""A worker's batch I/O without threads: the next chunk's MGET and the last chunk's record
script are sent on connections of their own and their replies read when needed, so Redis
works while the comparing thread compares, and no thread hand-off waits for the GIL.

Each connection has at most one command in flight (send, then read before the next send)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, cast

from redis import Redis
from redis.connection import Connection
from redis.exceptions import NoScriptError

from diffsvc.core.models import Exchange
from diffsvc.storage import keys
from diffsvc.storage.store import RECORD_SCRIPT

_RECORD_SHA = hashlib.sha1(RECORD_SCRIPT.encode()).hexdigest()


class Loader:
    """MGET of a chunk's exchanges: `send` now, `read` (and decode) later."""

    def __init__(self, r: Redis) -> None:
        self.pool = r.connection_pool
        self.conn: Connection = self.pool.get_connection()
        self.sent = False

    def send(self, ids: Sequence[str]) -> None:
        self.conn.send_command("MGET", *[keys.exchange(i) for i in ids])
        self.sent = True

    def read(self) -> list[Exchange | None]:
        self.sent = False
        raws = cast("list[bytes | None]", self.conn.read_response())
        return [Exchange.from_bytes(raw) if raw else None for raw in raws]

    def close(self) -> None:
        if self.sent:  # an exception between send and read: the reply is not wanted
            self.conn.disconnect()
        self.pool.release(self.conn)


class Recorder:
    """The record script (`store.record_comparisons`) of a chunk: `send` now, its count read
    at the next `send` or at `finish`. A record that fails raises there."""

    def __init__(self, r: Redis) -> None:
        self.pool = r.connection_pool
        self.conn: Connection = self.pool.get_connection()
        self.args: list[Any] | None = None  # of the command in flight
        self.counted = 0

    def send(self, args: list[Any]) -> None:
        self._read()
        if args:
            self.conn.send_command("EVALSHA", _RECORD_SHA, 0, *args)
            self.args = args

    def _read(self) -> None:
        if self.args is None:
            return
        args, self.args = self.args, None
        try:
            self.counted += int(cast(int, self.conn.read_response()))
        except NoScriptError:  # Redis restarted or flushed its scripts: send the text once
            self.conn.send_command("EVAL", RECORD_SCRIPT, 0, *args)
            self.counted += int(cast(int, self.conn.read_response()))

    def finish(self) -> int:
        self._read()
        return self.counted

    def close(self) -> None:
        if self.args is not None:
            self.conn.disconnect()
        self.pool.release(self.conn)
