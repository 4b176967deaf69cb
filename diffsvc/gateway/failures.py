"""The one place an upstream call's exception becomes data: a Reply with `error` (the
message) and `error_kind` (why: connect, timeout, reset, tls, protocol, too_large; see
diffsvc.errors.ERROR_KINDS). Both HTTP clients (upstream, fastclient) use it."""

from __future__ import annotations

import ssl
import time

import aiohttp

from diffsvc.core.models import Reply
from diffsvc.errors import ProtocolError

_RESET = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
          aiohttp.ServerDisconnectedError)
_TLS = (ssl.SSLError, ssl.CertificateError, aiohttp.ClientSSLError)
_PROTOCOL = (ProtocolError, ValueError, RuntimeError, aiohttp.ClientResponseError,
             aiohttp.ClientPayloadError)


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def error_kind(exc: BaseException) -> str:
    """Why a call failed, from its exception (most specific first: aiohttp's TLS and
    connector errors are OSErrors too)."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, _TLS):
        return "tls"
    if isinstance(exc, _RESET):
        return "reset"
    if isinstance(exc, (ConnectionRefusedError, aiohttp.ClientConnectorError)):
        return "connect"
    if isinstance(exc, _PROTOCOL):
        return "protocol"
    if isinstance(exc, aiohttp.ClientOSError) and exc.errno is not None:
        return "reset" if exc.errno in (104, 32) else "connect"
    if isinstance(exc, OSError):
        return "connect"
    return "other"


def failed(exc: BaseException, started: float, timeout: float) -> Reply:
    """The Reply of a call that raised `exc`."""
    if isinstance(exc, TimeoutError):
        return Reply(elapsed_ms=elapsed_ms(started), error=f"timeout after {timeout:g}s",
                     error_kind="timeout")
    return Reply(elapsed_ms=elapsed_ms(started), error=f"{type(exc).__name__}: {exc}"[:300],
                 error_kind=error_kind(exc))


def too_large(status: int, headers: list[tuple[str, str]], started: float,
              max_body: int) -> Reply:
    """The Reply of an answer whose body is over the cap: its head, no body."""
    return Reply(status, headers, b"", elapsed_ms(started), f"body larger than {max_body} bytes",
                 "too_large")
