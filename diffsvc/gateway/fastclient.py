"""A lean HTTP/1.1 client for shadow calls: pooled keep-alive connections on raw asyncio
protocols, one buffer per response, no per-request objects beyond the Reply.

The shadow path sends a request that has been fully read (its body is bytes) and keeps
the whole answer, so it needs none of a general client's machinery (streaming, redirects,
cookies, auto-decompression, tracing). Profiling the gateway showed aiohttp's
ClientSession costing about 40% of its CPU per mirrored request; this costs a fraction.
http:// and https:// (TLS with the context the Client is given). Framing follows RFC 9112
§6: no body for HEAD, 1xx, 204 and 304; chunked; Content-Length; else read to close. A
network failure is a Reply with `error`, as in `upstream.call`."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from diffsvc.core.models import Reply, Request
from diffsvc.errors import ProtocolError
from diffsvc.gateway import failures

_NO_BODY_STATUS = frozenset({204, 304})
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
SWEEP_INTERVAL = 0.02  # seconds: a call's timeout is honoured this closely


class _Conn(asyncio.Protocol):
    """One keep-alive connection; parses one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.received = False
        self.deadline = 0.0  # loop time after which the call in progress times out
        self.expired = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.received = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def eof_received(self) -> bool:
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def more(self) -> None:
        """Wait for more bytes (or the close, or the deadline: TimeoutError)."""
        if self.expired:
            raise TimeoutError
        if self.closed:
            raise ConnectionResetError("upstream closed the connection")
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter
        self.waiter = None
        if self.expired:
            raise TimeoutError

    def expire(self) -> None:
        """The deadline passed: the waiting call raises TimeoutError; the connection closes."""
        self.expired = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True


class _Pool:
    def __init__(self, host: str, port: int, max_idle: int,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.max_idle = host, port, max_idle
        self.ssl = ssl_context  # https: TLS over each connection
        self.idle: list[_Conn] = []
        self.down_until = 0.0  # after a failed connect, with a backoff: fail fast until then
        self.down_error = ""
        self.down_kind = "connect"

    async def connect(self, backoff: float) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                _Conn, self.host, self.port, ssl=self.ssl,
                server_hostname=self.host if self.ssl is not None else None)
        except OSError as exc:
            if backoff > 0:
                self.down_until = time.monotonic() + backoff
                self.down_error = f"{type(exc).__name__}: {exc}"[:250]
                self.down_kind = failures.error_kind(exc)
            raise
        return conn

    def release(self, conn: _Conn) -> None:
        if conn.closed or conn.buf or len(self.idle) >= self.max_idle:
            conn.close()
        else:
            self.idle.append(conn)


class Client:
    """Pools per origin; `await client.call(base_url, request, headers, timeout, max_body)`."""

    def __init__(self, max_idle_per_origin: int = 256,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_idle = max_idle_per_origin
        self.ssl = ssl_context or ssl.create_default_context()  # of https:// upstreams
        self.pools: dict[str, tuple[_Pool, bytes, str]] = {}
        self.busy: set[_Conn] = set()  # connections with a call in progress
        self._sweeper: asyncio.Task[None] | None = None

    async def _sweep(self) -> None:
        """Expire the calls past their deadline, every SWEEP_INTERVAL: one timer for all
        calls instead of a timeout context per call (7% of the gateway's CPU)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = loop.time()
            for conn in [c for c in self.busy if c.deadline <= now]:
                conn.expire()

    def _pool(self, base_url: str) -> tuple[_Pool, bytes, str]:
        """The pool of an upstream URL, its path prefix and its Host header."""
        found = self.pools.get(base_url)
        if found is None:
            parts = urlsplit(base_url)
            if parts.scheme not in ("http", "https"):
                raise ValueError(f"only http:// and https:// URLs, not {base_url!r}")
            tls = parts.scheme == "https"
            host, port = parts.hostname or "127.0.0.1", parts.port or (443 if tls else 80)
            pool = _Pool(host, port, self.max_idle, self.ssl if tls else None)
            found = (pool, parts.path.encode("utf-8"),
                     parts.netloc.rsplit("@", 1)[-1])
            self.pools[base_url] = found
        return found

    async def call(self, base_url: str, request: Request, headers: Iterable[tuple[str, str]],
                   timeout: float, max_body: int, backoff: float = 0.0,
                   host: str | None = None) -> Reply:
        """The reply, or a Reply with `error`. With `backoff`, a failed connect makes the
        calls of the next `backoff` seconds fail at once with the same error (a dead
        shadow upstream then costs no connect attempt per request). `host`: the Host header
        sent instead of the upstream's own host:port."""
        started = time.perf_counter()
        try:
            pool, prefix, hostport = self._pool(base_url)
            raw = _serialize(request, prefix, host or hostport, headers)
        except ValueError as exc:
            return failures.failed(exc, started, timeout)
        if backoff > 0 and pool.down_until and time.monotonic() < pool.down_until:
            return Reply(elapsed_ms=failures.elapsed_ms(started),
                         error=f"{pool.down_error} (connect failed; retried after {backoff:g}s)",
                         error_kind=pool.down_kind)
        conn: _Conn | None = None
        loop = asyncio.get_running_loop()
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())
        deadline = loop.time() + timeout
        try:
            for attempt in (0, 1):
                while pool.idle and pool.idle[-1].closed:  # closed while idle
                    pool.idle.pop()
                reused = bool(pool.idle) and not attempt  # the retry: a new connection
                if reused:
                    conn = pool.idle.pop()
                else:
                    conn = await asyncio.wait_for(pool.connect(backoff), deadline - loop.time())
                assert conn.transport is not None
                conn.received = False
                conn.deadline = deadline
                self.busy.add(conn)
                conn.transport.write(raw)
                try:
                    status, head, body, keep = await _read_response(
                        conn, request.method == "HEAD", max_body)
                    break
                except ConnectionResetError:
                    # a kept-alive connection the upstream had closed: retry once, fresh
                    if attempt or not reused or conn.received or request.method not in _SAFE:
                        raise
                    self.busy.discard(conn)
                    conn.close()
            assert conn is not None
            self.busy.discard(conn)
            if not keep:
                conn.close()
            pool.release(conn)
            if body is None:
                return failures.too_large(status, head, started, max_body)
            return Reply(status, head, body, failures.elapsed_ms(started))
        except (TimeoutError, OSError, ProtocolError, ValueError) as exc:
            self._drop(conn)
            return failures.failed(exc, started, timeout)
        except BaseException:
            self._drop(conn)
            raise

    def _drop(self, conn: _Conn | None) -> None:
        if conn is not None:
            self.busy.discard(conn)
            conn.close()

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for pool, _, _ in self.pools.values():
            for conn in pool.idle:
                conn.close()
            pool.idle.clear()


def _check(text: str, what: str) -> bytes:
    if "\r" in text or "\n" in text or "\0" in text:
        raise ValueError(f"{what} contains a line break or NUL: {text[:60]!r}")
    return text.encode("utf-8", "surrogateescape")


def _serialize(request: Request, prefix: bytes, hostport: str,
               headers: Iterable[tuple[str, str]]) -> bytes:
    target = request.target
    if " " in target:
        raise ValueError(f"request target contains a space: {target[:60]!r}")
    parts = [_check(request.method, "method"), b" ", prefix, _check(target, "target"),
             b" HTTP/1.1\r\nHost: ", hostport.encode("idna" if not hostport.isascii() else "ascii"),
             b"\r\n"]
    for name, value in headers:
        parts += [_check(name, "header name"), b": ", _check(value, f"header {name}"), b"\r\n"]
    if request.body or request.method not in _SAFE:
        parts += [b"Content-Length: ", str(len(request.body)).encode(), b"\r\n\r\n", request.body]
    else:
        parts.append(b"\r\n")
    return b"".join(parts)


async def _read_response(conn: _Conn, head_request: bool, max_body: int) -> tuple[
        int, list[tuple[str, str]], bytes | None, bool]:
    """(status, headers, body or None when over max_body, connection reusable)."""
    while True:  # skip 1xx interim responses
        end = conn.buf.find(b"\r\n\r\n")
        while end < 0:
            if len(conn.buf) > 256 * 1024:
                raise ProtocolError("response header section larger than 256 KiB")
            await conn.more()
            end = conn.buf.find(b"\r\n\r\n")
        lines = bytes(conn.buf[:end]).split(b"\r\n")
        del conn.buf[:end + 4]
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            raise ProtocolError(f"bad status line {status_line[:60]!r}")
        status = int(status_line[9:12])
        if status >= 200 or status == 101:
            break
    headers: list[tuple[str, str]] = []
    length = -1
    chunked = False
    keep = status_line[7:8] == b"1"  # HTTP/1.1 keeps alive unless told otherwise
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"bad header line {line[:60]!r}")
        key = name.decode("latin-1")
        text = value.strip().decode("utf-8", "surrogateescape")
        headers.append((key, text))
        lower = key.lower()
        if lower == "content-length":
            length = int(text)
        elif lower == "transfer-encoding":
            chunked = text.lower().endswith("chunked")
        elif lower == "connection":
            token = text.lower()
            keep = "close" not in token and (keep or "keep-alive" in token)
    if head_request or status in _NO_BODY_STATUS or status < 200:
        return status, headers, b"", keep and status != 101  # 101: no longer HTTP
    if chunked:
        body = await _read_chunked(conn, max_body)
        return status, headers, body, keep and body is not None
    if length >= 0:
        if length > max_body:
            return status, headers, None, False
        while len(conn.buf) < length:
            await conn.more()
        body = bytes(conn.buf[:length])
        del conn.buf[:length]
        return status, headers, body, keep
    while not conn.closed:  # no framing: the body ends when the connection does
        if len(conn.buf) > max_body:
            return status, headers, None, False
        conn.waiter = asyncio.get_running_loop().create_future()
        await conn.waiter
        if conn.expired:
            raise TimeoutError
    body = bytes(conn.buf)
    return status, headers, (body if len(body) <= max_body else None), False


async def _read_chunked(conn: _Conn, max_body: int) -> bytes | None:
    out = bytearray()
    while True:
        end = conn.buf.find(b"\r\n")
        while end < 0:
            await conn.more()
            end = conn.buf.find(b"\r\n")
        size_text = bytes(conn.buf[:end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
        del conn.buf[:end + 2]
        if size == 0:  # trailers, then the blank line
            while True:
                end = conn.buf.find(b"\r\n")
                while end < 0:
                    await conn.more()
                    end = conn.buf.find(b"\r\n")
                line = bytes(conn.buf[:end])
                del conn.buf[:end + 2]
                if not line:
                    return bytes(out)
        if len(out) + size > max_body:
            return None
        while len(conn.buf) < size + 2:
            await conn.more()
        out += conn.buf[:size]
        del conn.buf[:size + 2]

