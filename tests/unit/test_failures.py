"""Each transport failure becomes a Reply with the kind of error it is (connect, timeout,
reset, tls, protocol, too_large): the verdict and the metrics count errors by these kinds."""

from __future__ import annotations

import ssl
import time

import aiohttp
import pytest

from diffsvc.core.models import Reply
from diffsvc.errors import ERROR_KINDS, ProtocolError
from diffsvc.gateway.failures import error_kind, failed, too_large


@pytest.mark.parametrize(("exc", "kind"), [
    (TimeoutError(), "timeout"),
    (ConnectionRefusedError(111, "refused"), "connect"),
    (ConnectionResetError(104, "reset by peer"), "reset"),
    (BrokenPipeError(32, "broken pipe"), "reset"),
    (aiohttp.ServerDisconnectedError(), "reset"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), "tls"),
    (ProtocolError("bad status line"), "protocol"),
    (ValueError("header refused"), "protocol"),
    (OSError(113, "no route to host"), "connect"),
    (KeyError("x"), "other"),
])
def test_error_kind(exc: BaseException, kind: str) -> None:
    assert error_kind(exc) == kind
    assert kind in ERROR_KINDS


def test_failed_reply_carries_message_and_kind() -> None:
    reply = failed(ConnectionRefusedError(111, "Connection refused"), time.perf_counter(), 2.0)
    assert reply.error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert reply.error_kind == "connect"
    assert failed(TimeoutError(), time.perf_counter(), 2.5).error == "timeout after 2.5s"
    big = too_large(200, [("a", "b")], time.perf_counter(), 10)
    assert (big.status, big.body, big.error_kind) == (200, b"", "too_large")


def test_kind_survives_storage_and_old_records_read() -> None:
    reply = failed(ConnectionResetError(104, "reset"), time.perf_counter(), 1.0)
    again = Reply.from_meta(reply.meta(), b"")
    assert (again.error, again.error_kind) == (reply.error, "reset")
    old = {"status": 0, "headers": [], "elapsed_ms": 1.0, "error": "timeout after 1s"}
    assert Reply.from_meta(old, b"").failure == "other"  # written before kinds existed
    assert Reply.from_meta({**old, "error": None}, b"").failure is None
    assert again.failure == "reset"
