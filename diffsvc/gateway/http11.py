"""HTTP/1.1 on one client connection, as an asyncio Protocol whose callbacks hand parsing to
llhttp (httptools), as uvicorn's httptools protocol does (diffsvc.gateway.server listens).

- Keep-alive, and pipelining-safe: requests parsed ahead wait in order; their responses
  are written in the order the requests came (at most PIPELINE_LIMIT parsed ahead, then
  reading pauses).
- Request bodies are buffered up to what the handler asks for; past BODY_HIGH_WATER
  reading pauses until the handler takes the bytes, so a large body streams through.
- `Expect: 100-continue` is answered when the handler first reads the body.
- A request line or a header field longer than the owner's `max_header_size` gets 414 /
  431, more than MAX_HEADERS header fields 431, anything llhttp refuses 400; the
  connection then closes (after the answers to the requests before it).
- A handler may answer with a Tunnel (a WebSocket upgrade primary accepted): the client's
  connection is then spliced to primary's (diffsvc.gateway.tunnel)."""

from __future__ import annotations

import asyncio
import http
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Protocol

import httptools

from diffsvc.errors import DiffsvcError
from diffsvc.gateway.tunnel import Tunnel

log = logging.getLogger("diffsvc.gateway")

PIPELINE_LIMIT = 16
BODY_HIGH_WATER = 256 * 1024
MAX_HEADERS = 128
_NO_LENGTH = frozenset({204, 304})


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f" {code} {phrase}\r\n".encode("ascii")


_STATUS = {code: _status_line(code) for code in range(100, 600)}


@dataclass(slots=True)
class Response:
    """What the handler answers. The server adds Content-Length (unless `head`: a reply to
    HEAD keeps primary's), Date when missing, and Connection when it closes."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    head: bool = False
    close: bool = False


def text(status: int, message: str, *, close: bool = False) -> Response:
    return Response(status, [("Content-Type", "text/plain; charset=utf-8")],
                    message.encode("utf-8"), close=close)


class Incoming:
    """One request: its head, and its body as it arrives."""

    __slots__ = ("method", "target", "headers", "version", "keep_alive", "upgrade", "remote",
                 "body", "complete", "done", "expect_continue", "_conn", "_waiter")

    def __init__(self, conn: Connection, method: str, target: str, headers: list[tuple[str, str]],
                 version: str, keep_alive: bool, upgrade: bool) -> None:
        self.method, self.target, self.headers = method, target, headers
        self.version, self.keep_alive, self.upgrade = version, keep_alive, upgrade
        self.remote = conn.remote
        self.body = bytearray()
        self.complete = False  # the whole body has arrived
        self.done = False  # answered: body bytes still arriving are dropped
        self.expect_continue = False
        self._conn = conn
        self._waiter: asyncio.Future[None] | None = None

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _more(self) -> None:
        if self._conn.lost:
            raise ConnectionResetError("the client closed the connection mid-body")
        self._waiter = asyncio.get_running_loop().create_future()
        self._conn.resume()
        await self._waiter
        self._waiter = None

    def _send_continue(self) -> None:
        if self.expect_continue:
            self.expect_continue = False
            self._conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def read(self, cap: int) -> tuple[bytes, bool]:
        """The body, or its first part and True when it is larger than `cap` (the rest
        comes from `stream`)."""
        self._send_continue()
        while not self.complete and len(self.body) <= cap:
            await self._more()
        data = bytes(self.body)
        self.body.clear()
        return data, len(data) > cap or not self.complete

    async def stream(self, head: bytes) -> AsyncIterator[bytes]:
        """`head` (what `read` returned), then the rest of the body as it arrives."""
        yield head
        while True:
            if self.body:
                chunk = bytes(self.body)
                self.body.clear()
                self._conn.resume()
                yield chunk
            elif self.complete:
                return
            else:
                await self._more()


class Owner(Protocol):
    """What a connection needs of the server that accepted it."""

    app: Any
    handler: Callable[[Any, Incoming], Awaitable[Response | Tunnel]]
    max_header_size: int
    conns: set[Connection]
    clock: Clock


class Clock:
    """The Date header value, formatted once a second."""

    def __init__(self) -> None:
        self.second, self.value = 0, ""

    def now(self) -> str:
        second = int(time.time())
        if second != self.second:
            self.second, self.value = second, formatdate(second, usegmt=True)
        return self.value


class Connection(asyncio.Protocol):
    """One client connection: parse, queue, answer in order."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.queue: deque[Incoming] = deque()
        self.parsing: Incoming | None = None
        self.task: asyncio.Task[None] | None = None
        self.paused = self.lost = False
        self.idle_since: float | None = time.monotonic()
        self.tunnel: Tunnel | None = None
        self.early = bytearray()  # bytes after an upgrade request, before the tunnel
        self.upgraded = False
        self.error: Response | None = None  # to answer once the queue is served, then close
        self._url = b""
        self._headers: list[tuple[str, str]] = []

    # --- transport callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if isinstance(peer, tuple) else None
        self.owner.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.owner.conns.discard(self)
        for req in self.queue:
            req._wake()
        if self.tunnel is not None:
            self.tunnel.close()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.send(data)
            return
        if self.upgraded or self.error is not None:
            self.early += data[:BODY_HIGH_WATER - len(self.early)]
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.upgraded = True
            self.early += data[exc.args[0]:]
        except _TooLarge as exc:
            self._fail(exc.response)
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self._fail(cause.response if isinstance(cause, _TooLarge) else
                       text(400, f"diffsvc: bad HTTP request ({exc})\n", close=True))

    def pause_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.pause()

    def resume_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.resume()

    # --- parser callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self.idle_since = None

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.owner.max_header_size:
            raise _TooLarge(text(414, "diffsvc: request line too long\n", close=True))

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > self.owner.max_header_size:
            raise _TooLarge(text(431, "diffsvc: header field too large\n", close=True))
        if len(self._headers) >= MAX_HEADERS:
            raise _TooLarge(text(431, f"diffsvc: more than {MAX_HEADERS} header fields\n",
                                 close=True))
        self._headers.append((name.decode("latin-1"),
                              value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        parser = self.parser
        target = self._url.decode("utf-8", "surrogateescape")
        req = Incoming(self, parser.get_method().decode("ascii"), target, self._headers,
                       parser.get_http_version(), parser.should_keep_alive(),
                       parser.should_upgrade())
        if req.upgrade:
            req.keep_alive = False  # the parser stops at an upgrade: answer, then close
        for name, value in self._headers:
            if len(name) == 6 and name.lower() == "expect":
                req.expect_continue = value.lower() == "100-continue"
        self.parsing = req
        self.queue.append(req)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._serve())
        elif len(self.queue) > PIPELINE_LIMIT:
            self.pause()

    def on_body(self, body: bytes) -> None:
        req = self.parsing
        if req is not None and not req.done:
            req.body += body
            if len(req.body) > BODY_HIGH_WATER:
                self.pause()
            req._wake()

    def on_message_complete(self) -> None:
        req = self.parsing
        if req is not None:
            req.complete = True
            req._wake()

    # --- answering
    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and len(self.queue) <= PIPELINE_LIMIT:
            self.paused = False
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _fail(self, response: Response) -> None:
        self.error = response
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        """Answer the queued requests in order; then the parse error, if any."""
        handler, app = self.owner.handler, self.owner.app
        try:
            while self.queue and not self.lost:
                req = self.queue[0]
                try:
                    answer = await handler(app, req)
                except Exception:
                    if self.lost:  # the client went away mid-request: nobody to answer
                        return
                    log.exception("gateway handler failed for %s %s", req.method, req.target)
                    answer = text(500, "diffsvc: internal error\n", close=True)
                req.done = True
                req.body.clear()
                self.queue.popleft()
                if isinstance(answer, Tunnel):
                    self._splice(answer)
                    return
                self._respond(req, answer)
                if answer.close or not req.keep_alive:
                    self.close()
                    return
                self.resume()
            if self.error is not None and not self.lost:
                self._respond(None, self.error)
                self.close()
        finally:
            self.task = None
            if not self.queue:
                self.idle_since = time.monotonic()

    def _respond(self, req: Incoming | None, resp: Response) -> None:
        version = b"HTTP/1.0" if req is not None and req.version == "1.0" else b"HTTP/1.1"
        lines = []
        dated = False
        for name, value in resp.headers:
            if not dated and len(name) == 4 and name.lower() == "date":
                dated = True
            lines.append(f"{name}: {value}\r\n")
        if not dated:
            lines.append(f"Date: {self.owner.clock.now()}\r\n")
        if not resp.head and resp.status not in _NO_LENGTH and resp.status >= 200:
            lines.append(f"Content-Length: {len(resp.body)}\r\n")
        if resp.close or req is None or not req.keep_alive:
            lines.append("Connection: close\r\n")
        elif req.version == "1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = version + _STATUS.get(resp.status, _status_line(resp.status)) + \
            "".join(lines).encode("utf-8", "surrogateescape")
        if resp.head or not resp.body:
            self.write(head)
        elif len(resp.body) < 16384:
            self.write(head + resp.body)
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.writelines((head, resp.body))

    def _splice(self, tunnel: Tunnel) -> None:
        assert self.transport is not None
        self.tunnel = tunnel
        tunnel.attach(self.transport, bytes(self.early))
        self.early.clear()
        self.resume()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _TooLarge(DiffsvcError):  # internal: a limit hit while parsing, answered at once
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response
