"""WebSocket upgrades on the lean server: the client's handshake goes to primary as sent
(plus the forwarding headers); when primary answers 101, the two connections are spliced
and bytes flow both ways untouched until either side closes. Never mirrored."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Iterable
from urllib.parse import urlsplit

log = logging.getLogger("diffsvc.gateway")

MAX_HEAD = 64 * 1024


class _Upstream(asyncio.Protocol):
    """Primary's side: collects the response head, then forwards to the client."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.client: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.client is not None:
            self.client.write(data)
            return
        self.head += data
        if not self.ready.done() and (b"\r\n\r\n" in self.head or len(self.head) > MAX_HEAD):
            self.ready.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionResetError("primary closed the connection"))
        if self.client is not None:
            self.client.close()

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.pause_reading()

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.resume_reading()


class Tunnel:
    """An accepted upgrade: primary's connection, and its response (head and any bytes
    after it) still to be written to the client."""

    def __init__(self, upstream: _Upstream) -> None:
        self.upstream = upstream

    def attach(self, client: asyncio.Transport, early: bytes) -> None:
        """Splice: primary's response to the client, the client's early bytes to primary."""
        up = self.upstream
        up.client = client
        client.write(bytes(up.head))
        up.head.clear()
        if early:
            self.send(early)
        if up.transport is None or up.transport.is_closing():
            client.close()

    def send(self, data: bytes) -> None:
        if self.upstream.transport is not None:
            self.upstream.transport.write(data)

    def pause(self) -> None:
        if self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume(self) -> None:
        if self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def close(self) -> None:
        if self.upstream.transport is not None:
            self.upstream.transport.close()


def _status(head: bytes) -> int:
    line = head.split(b"\r\n", 1)[0]
    if not line.startswith(b"HTTP/1.") or len(line) < 12 or not line[9:12].isdigit():
        raise ConnectionError(f"primary answered the upgrade with {line[:60]!r}")
    return int(line[9:12])


async def open_websocket(base_url: str, method: str, target: str,
                         headers: Iterable[tuple[str, str]], timeout: float,
                         counters: Counter[str],
                         ssl_context: ssl.SSLContext | None = None) -> Tunnel | int:
    """The Tunnel when primary accepts the upgrade (counted `websocket`), else the status to
    answer: primary's (`websocket_refused`) or 502 (`primary_errors`). An https primary is
    checked with `ssl_context` (the tls.* settings), else the system's defaults."""
    parts = urlsplit(base_url)
    tls = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if tls else 80)
    lines = [f"{method} {parts.path}{target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"]
    lines += [f"{k}: {v}\r\n" for k, v in headers if k.lower() != "host"]
    lines.append("\r\n")
    transport: asyncio.BaseTransport | None = None
    try:
        async with asyncio.timeout(timeout):
            transport, up = await asyncio.get_running_loop().create_connection(
                _Upstream, host, port, ssl=(ssl_context or True) if tls else None)
            transport.write("".join(lines).encode("utf-8", "surrogateescape"))
            await up.ready
            status = _status(bytes(up.head))
    except (OSError, TimeoutError, ConnectionError) as exc:
        if transport is not None:
            transport.close()
        counters["primary_errors"] += 1
        log.warning("primary WebSocket failed for %s: %s", target, exc)
        return 502
    if status != 101:
        transport.close()
        counters["websocket_refused"] += 1
        return status
    counters["websocket"] += 1
    return Tunnel(up)
