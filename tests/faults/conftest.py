"""Helpers of the fault suite: misbehaving upstreams on raw sockets, a primary that says what
it received, a client that counts what went wrong, and processes started and killed for real."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from redis import Redis

from diffsvc import config
from diffsvc.config import Config
from diffsvc.core.models import Exchange
from diffsvc.storage import keys, store

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until condition() is truthy; fail naming `what` after a generous timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def primary_app(hits: Counter[str] | None = None, delay: float = 0.0) -> web.Application:
    """Answers every request with JSON describing it (method, path, body size and hash)."""
    hits = hits if hits is not None else Counter()

    async def echo(request: web.Request) -> web.Response:
        import asyncio

        body = await request.read()
        hits[request.method] += 1
        if delay:
            await asyncio.sleep(delay)
        return web.json_response({"method": request.method, "path": request.path,
                                  "len": len(body), "sha": hashlib.sha256(body).hexdigest()[:16],
                                  "xff": request.headers.get("X-Forwarded-For"),
                                  "forwarded": request.headers.get("Forwarded")})

    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


class RawServer:
    """A TCP server on 127.0.0.1 whose every connection is handled by `handler(sock)`."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):
                    handler(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def make(handler: Callable[[socket.socket], None]) -> RawServer:
        s = RawServer(handler)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def get(url: str, path: str = "/", method: str = "GET", body: bytes | None = None,
        headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def raw_request(url: str, data: bytes, timeout: float = 10) -> bytes:
    """Send bytes as they are; everything the gateway answers until it closes (or timeout)."""
    host, port = url.removeprefix("http://").split(":")
    out = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
    return out


def stored_ids(r: Redis) -> set[str]:
    """The ids of every exchange stored in Redis."""
    prefix = keys.exchange("")
    return {k.decode()[len(prefix):] for k in r.scan_iter(match=keys.exchange("*"), count=1000)}


def stored_exchanges(r: Redis) -> list[Exchange]:
    return [ex for ex in store.load_exchanges(r, sorted(stored_ids(r))) if ex is not None]


def spawn(cfg: Config, tmp_path: Path, *args: str, log_name: str = "proc") -> subprocess.Popen[bytes]:
    """`python -m diffsvc <args> --config <cfg>` as a child process, output to a log file."""
    path = tmp_path / f"{log_name}.yaml"
    config.write_file(cfg, path)
    log = open(tmp_path / f"{log_name}.log", "ab")  # noqa: SIM115 - closed with the process
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DIFFSVC_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "diffsvc", *args, "--config", str(path)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                            start_new_session=True)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child processes a test starts; killed at teardown if still running."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)
