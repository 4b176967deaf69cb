"""Expected failures as one line for an operator: what failed, where, and what to do, with
the exit status that says which kind it was (diffsvc.errors.EXIT_*). Anything not listed
here is a bug: the CLI prints its traceback."""

from __future__ import annotations

import errno
import re

import aiohttp
import redis.exceptions

from diffsvc.errors import (
    EXIT_CONFIG,
    EXIT_NOINPUT,
    EXIT_UNAVAILABLE,
    DiffsvcError,
)

REDIS_FIX = "start redis-server there, or set redis_url (--redis-url, DIFFSVC_REDIS_URL)"


def _bind_address(exc: OSError) -> str:
    """asyncio's bind errors name the address: "... bind on address ('127.0.0.1', 8080): ..."."""
    found = re.search(r"\('([^']*)', (\d+)\)", str(exc))
    return f"{found.group(1)}:{found.group(2)}" if found else "the listen address"


def explain(exc: BaseException) -> tuple[int, str] | None:
    """(exit status, one line) for an expected failure; None for a bug."""
    if isinstance(exc, DiffsvcError):
        return exc.exit_code, str(exc)
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return EXIT_CONFIG, (f"Redis refused the password ({exc}): put the right one in "
                             f"redis_url (redis://:PASSWORD@HOST:PORT/0 or DIFFSVC_REDIS_URL)")
    if isinstance(exc, redis.exceptions.ResponseError) and "NOAUTH" in str(exc):
        return EXIT_CONFIG, ("Redis wants a password: put it in redis_url "
                             "(redis://:PASSWORD@HOST:PORT/0 or DIFFSVC_REDIS_URL)")
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return EXIT_UNAVAILABLE, f"Redis unreachable: {exc} ({REDIS_FIX})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return EXIT_UNAVAILABLE, (f"cannot connect to {exc.host}:{exc.port} ({exc.strerror}): "
                                  f"is the upstream running, and is its URL right?")
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            where = _bind_address(exc)
            return EXIT_UNAVAILABLE, (f"cannot listen on {where}: the address is already in use; "
                                      f"stop what listens there or choose another address")
        if exc.errno == errno.EACCES and "bind" in str(exc):
            return EXIT_UNAVAILABLE, (f"cannot listen on {_bind_address(exc)}: permission denied "
                                      f"(ports below 1024 need privileges); choose another port")
        if exc.filename is not None:
            return EXIT_NOINPUT, (f"cannot open {exc.filename}: {exc.strerror or exc}; check "
                                  f"the path and its permissions")
    return None
