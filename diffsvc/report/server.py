"""The report server: the JSON API (/api/v1/), the web UI (/, /static/) and whatever other
routes register themselves in `build_app` (e.g. /metrics, the canary gate).

Access: when `report.token` is set, every route except the UI's static files needs
`Authorization: Bearer <token>` (or `?token=`); binding to anything but loopback without a
token is refused before anything listens."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from diffsvc.config import Config, is_loopback, split_listen
from diffsvc.config.appkey import CONFIG
from diffsvc.errors import ConfigError
from diffsvc.report import api, gate, metrics, notifier
from diffsvc.report.appkeys import REDIS
from diffsvc.storage import store

STATIC = Path(__file__).parent / "static"
PUBLIC_PATHS = frozenset({"/", "/index.html", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)

RouteRegistrar = Callable[[web.Application], None]


def check_access(cfg: Config) -> None:
    """Refuse to serve beyond loopback without a token."""
    host, _ = split_listen(cfg.report_listen)
    if not cfg.report_token and not is_loopback(host):
        raise ConfigError("report.token", f"is required when report.listen binds to a "
                                          f"non-loopback address ({host}); set report.token "
                                          f"(DIFFSVC_REPORT_TOKEN) or listen on 127.0.0.1",
                          cfg.report_listen)


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


async def _redis(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    assert cfg.redis_url is not None
    client = store.connect(cfg.redis_url, timeout=10)
    app[REDIS] = client
    yield
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
    app = web.Application(middlewares=[auth])
    app[CONFIG] = cfg
    app.cleanup_ctx.append(_redis)
    for register in route_registrars():
        register(app)
    return app


def url(cfg: Config) -> str:
    host, port = split_listen(cfg.report_listen)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def run(cfg: Config) -> None:
    """Serve until SIGINT/SIGTERM, printing the URL once listening."""
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    app = build_app(cfg)
    host, port = split_listen(cfg.report_listen)
    suffix = " (bearer token required)" if cfg.report_token else ""
    print(f"diffsvc report at {url(cfg)}{suffix}", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=2)
