"""`diffsvc gateway --processes N`: N forked processes serve one port (SO_REUSEPORT); SIGTERM
to the parent stops them all, and every exchange they captured reaches Redis."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import web
from redis import Redis

from diffsvc.ops.embedded import free_port
from diffsvc.ops.stack import wait_listening
from diffsvc.storage import keys, store

ROOT = Path(__file__).resolve().parents[2]


def _upstream() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path, "pid": os.getpid()})

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    return app


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def test_processes_share_the_port_and_all_exchanges_are_stored(serve, redis_url: str,
                                                              r: Redis) -> None:
    prod, cand = serve(_upstream()), serve(_upstream())
    port = free_port()
    gateway = subprocess.Popen(
        [sys.executable, "-m", "diffsvc", "gateway", "--listen", f"127.0.0.1:{port}",
         "--primary", prod.url, "--candidate", cand.url, "--redis-url", redis_url,
         "--processes", "2", "--flush-interval", "50ms"],
        cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_listening(f"127.0.0.1:{port}", gateway)
        deadline = time.monotonic() + 10
        while len(_children(gateway.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        children = _children(gateway.pid)
        assert len(children) == 2
        for i in range(40):  # a new connection each time: the kernel spreads them
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", f"/api/items/{i}")
            resp = conn.getresponse()
            assert resp.status == 200 and f"/api/items/{i}".encode() in resp.read()
            conn.close()
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(60)  # generous: each child drains its shadows (up to 5 s) on a busy machine
    assert gateway.returncode == 0
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(
            f"/proc/{child}/status").read_text().lower()
    assert len(list(r.scan_iter(match=keys.exchange("*")))) == 40  # both wrote what they buffered
    counters = store.gateway_counters(r)
    assert (counters.get("requests"), counters.get("captured")) == (40, 40)
