"""The gateway's lean HTTP/1.1 server: listens, hands each connection to
diffsvc.gateway.http11, closes connections idle for IDLE_TIMEOUT, shuts down gracefully.

The application is an aiohttp `web.Application` used for its keys and its cleanup context
(clients, capture, shadower); its HANDLER key holds the request handler, its
MAX_HEADER_SIZE key the longest request line / header field accepted."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from diffsvc.gateway.http11 import Clock, Connection, Incoming, Response
from diffsvc.gateway.tunnel import Tunnel

IDLE_TIMEOUT = 75.0

Handler = Callable[[web.Application, Incoming], Awaitable[Response | Tunnel]]
HANDLER: web.AppKey[Handler] = web.AppKey("lean_handler")
MAX_HEADER_SIZE = web.AppKey("max_header_size", int)


class Server:
    """Serves `app` (its HANDLER) on one listening socket until `close`."""

    def __init__(self, app: web.Application) -> None:
        self.app, self.handler = app, app[HANDLER]
        self.max_header_size = app[MAX_HEADER_SIZE]
        self.conns: set[Connection] = set()
        self.clock = Clock()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int, *, reuse_port: bool = False,
                    ssl: ssl_module.SSLContext | None = None) -> int:
        """Listen; the port listened on (`port` 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port, ssl=ssl,
                                                reuse_port=reuse_port or None, backlog=1024)
        self._sweeper = loop.create_task(self._sweep())
        return int(self._server.sockets[0].getsockname()[1])

    async def _sweep(self) -> None:
        """Close connections with no request in progress for IDLE_TIMEOUT seconds."""
        while True:
            await asyncio.sleep(IDLE_TIMEOUT / 5)
            deadline = time.monotonic() - IDLE_TIMEOUT
            for conn in list(self.conns):
                if conn.idle_since is not None and conn.idle_since < deadline:
                    conn.close()

    async def close(self, timeout: float) -> None:
        """Stop listening, close idle connections, let requests in progress finish."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + timeout
        while True:
            for conn in list(self.conns):
                if conn.task is None and conn.tunnel is None:
                    conn.close()
            busy = [c for c in self.conns if c.task is not None]
            if not busy or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        for conn in list(self.conns):
            conn.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)


class AppServer:
    """The application's lifetime around a Server: its cleanup context entered before
    listening, left (shadows drained, capture flushed) after the last request."""

    def __init__(self, app: web.Application, shutdown_timeout: float) -> None:
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        self.server = Server(app)
        self.shutdown_timeout = shutdown_timeout

    async def start(self, host: str, port: int, *, reuse_port: bool = False,
                    ssl: ssl_module.SSLContext | None = None) -> int:
        await self.runner.setup()
        try:
            return await self.server.start(host, port, reuse_port=reuse_port, ssl=ssl)
        except BaseException:  # e.g. the port is taken: the resources are closed, not leaked
            await self.runner.cleanup()
            raise

    async def cleanup(self) -> None:
        await self.server.close(self.shutdown_timeout)
        await self.runner.cleanup()


def run(app: web.Application, host: str, port: int, *, shutdown_timeout: float,
        reuse_port: bool = False, ssl: ssl_module.SSLContext | None = None,
        started: Callable[[], None] | None = None) -> None:
    """Serve `app` until SIGINT/SIGTERM, then shut down as AppServer.cleanup does;
    `started` is called once it listens."""

    async def main() -> None:
        served = AppServer(app, shutdown_timeout)
        await served.start(host, port, reuse_port=reuse_port, ssl=ssl)
        if started is not None:
            started()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await served.cleanup()

    asyncio.run(main())
