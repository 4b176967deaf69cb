"""The report server: the JSON API (/api/v1/), the web UI (/, /static/) and whatever other
routes register themselves in `build_app` (e.g. /metrics, the canary gate).

Access: when `report.token` is set, every route except the UI's static files needs
`Authorization: Bearer <token>` (or `?token=`); binding to anything but loopback without a
token is refused before anything listens."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web
from redis import Redis

from diffsvc.config import Config, logs, require_token, split_listen, tls
from diffsvc.config.appkey import CONFIG
from diffsvc.report import api, gate, metrics, notifier
from diffsvc.report.appkeys import REDIS
from diffsvc.storage import store, waiting

STATIC = Path(__file__).parent / "static"
WATCH_INTERVAL = 5.0  # seconds between pings of Redis
log = logging.getLogger("diffsvc.report")
SERVED = web.AppKey("served", Counter[str])
PUBLIC_PATHS = frozenset({"/", "/index.html", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)

RouteRegistrar = Callable[[web.Application], None]


def check_access(cfg: Config) -> None:
    """Refuse to serve beyond loopback without a token."""
    require_token("report.token", cfg.report_token, "report.listen", cfg.report_listen)


def _presented_token(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.query.get("token", "")


@web.middleware
async def auth(request: web.Request,
               handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
               ) -> web.StreamResponse:
    token = request.app[CONFIG].report_token
    path = request.path
    public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
    if token and not public and not hmac.compare_digest(_presented_token(request).encode(),
                                                        token.encode()):
        return api.error(401, "missing or wrong bearer token (report.token)")
    return await handler(request)


@web.middleware
async def redis_away(request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
    """While Redis is away the API answers 503 in one line, not a 500 with a traceback."""
    try:
        return await handler(request)
    except waiting.DOWN as exc:
        return api.error(503, f"Redis unreachable ({exc}); the report server retries")


@web.middleware
async def counted(request: web.Request,
                  handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    request.app[SERVED]["requests"] += 1
    return await handler(request)


async def _watch(client: Redis, state: waiting.RedisState) -> None:
    """Ping Redis every WATCH_INTERVAL (with backoff while it is away): its going away and
    coming back are logged once each."""
    loop = asyncio.get_running_loop()
    delays = waiting.backoff(most=WATCH_INTERVAL)
    while True:
        try:
            await loop.run_in_executor(None, client.ping)
        except waiting.DOWN as exc:
            state.unreachable(exc, WATCH_INTERVAL)
            await asyncio.sleep(delays())
            continue
        state.reachable()
        delays = waiting.backoff(most=WATCH_INTERVAL)
        await asyncio.sleep(WATCH_INTERVAL)


async def _redis(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    assert cfg.redis_url is not None
    client = store.connect(cfg.redis_url, timeout=10)
    app[REDIS] = client
    watch = asyncio.create_task(_watch(client, waiting.RedisState(cfg.redis_url, log, "report server")))
    yield
    watch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watch
    client.close()


async def index(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def favicon(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


def add_ui_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/index.html", index)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static/", STATIC, append_version=False)


def route_registrars() -> list[RouteRegistrar]:
    """Every group of routes the server has. Other parts add theirs here, one line each."""
    return [api.add_routes, add_ui_routes, metrics.add_routes, gate.add_routes,
            notifier.add_to]


def build_app(cfg: Config) -> web.Application:
    cfg.require("redis_url")
    check_access(cfg)
    app = web.Application(middlewares=[counted, auth, redis_away])
    app[CONFIG] = cfg
    served: Counter[str] = Counter()
    app[SERVED] = served
    app.cleanup_ctx.append(_redis)
    ticker = logs.Ticker(logs.Progress(log, "report server", lambda: served,
                                       {"requests": ("requests",)}), cfg.log_interval)
    app.on_startup.append(ticker.start)
    app.on_cleanup.append(ticker.stop)
    for register in route_registrars():
        register(app)
    return app


def url(cfg: Config) -> str:
    host, port = split_listen(cfg.report_listen)
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if cfg.report_tls_cert_file else 'http'}://{shown}:{port}/"


def run(cfg: Config) -> None:
    """Serve until SIGINT/SIGTERM, printing the URL once listening."""
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    app = build_app(cfg)
    assert cfg.redis_url is not None
    waiting.check_password(store.connect(cfg.redis_url))
    host, port = split_listen(cfg.report_listen)
    started = (f"report server at {url(cfg)}"
               + (" (bearer token required)" if cfg.report_token else "")
               + f"; Redis {waiting.where(cfg.redis_url)}; config {logs.digest(cfg)}")
    web.run_app(app, host=host, port=port, access_log=None, shutdown_timeout=2,
                print=lambda _: log.info(started), ssl_context=tls.report_context(cfg))
