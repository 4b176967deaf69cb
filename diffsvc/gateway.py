"""The mirroring gateway: every client gets primary's response, byte for byte, as soon as it
is read; a copy of the request goes to candidate (and secondary) in the background."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web
from multidict import CIMultiDict

from . import ingress, store, upstream
from .capture import Capture, Shadower
from .config import Config, split_listen
from .errors import ConfigError
from .models import Reply, Request
from .promhist import LATENCY
from .traffic import TrafficControl

log = logging.getLogger("diffsvc.gateway")

DRAIN_TIMEOUT = 5.0

CONFIG = web.AppKey("config", Config)
COUNTERS: web.AppKey[Counter[str]] = web.AppKey("counters", Counter)
SHADOWER = web.AppKey("shadower", Shadower)
CLIENTS = web.AppKey("clients", upstream.Clients)
TRAFFIC = web.AppKey("traffic", TrafficControl)


def should_mirror(cfg: Config, request: Request, traffic: TrafficControl) -> str | None:
    """None when the request is mirrored, else the reason (a counter name) it is not: method,
    allow/deny lists, sampling and the shadow rate cap are diffsvc.traffic's to decide."""
    if cfg.candidate is None:
        return "skipped_no_candidate"
    return traffic.decide(request)


def _client_response(reply: Reply, method: str = "GET") -> web.Response:
    headers: CIMultiDict[str] = CIMultiDict()
    head = method == "HEAD"  # no body: primary's Content-Length is the one to pass on
    for name, value in upstream.end_to_end(reply.headers):
        if head or name.lower() != "content-length":
            headers.add(name, value)
    return web.Response(status=reply.status, headers=headers, body=None if head else reply.body)


async def call_primary(app: web.Application, req: Request, headers: CIMultiDict[str],
                       max_body: int, streamed: AsyncIterator[bytes] | None = None) -> Reply:
    """Primary's reply, counted: its latency, or `primary_errors` and a warning. Used by
    target mode too."""
    cfg, counters = app[CONFIG], app[COUNTERS]
    assert cfg.primary is not None
    primary = await app[CLIENTS].call(cfg.primary, req, headers, cfg.primary_timeout, max_body,
                                      data=streamed)
    if primary.error:
        counters["primary_errors"] += 1
        log.warning("primary failed for %s %s: %s", req.method, req.path, primary.error)
    else:
        LATENCY["primary"].observe(counters, primary.elapsed_ms)
    return primary


async def handle(request: web.Request) -> web.StreamResponse:
    app = request.app
    cfg, counters = app[CONFIG], app[COUNTERS]
    counters["requests"] += 1
    assert cfg.primary is not None
    if "Upgrade" in request.headers and ingress.is_websocket(request):
        return await ingress.proxy_websocket(request, app[CLIENTS].session, cfg.primary,
                                             counters)
    body, oversized = await ingress.read_body(request, cfg.mirror_max_body)
    req = Request(request.method, request.rel_url.raw_path, request.rel_url.raw_query_string,
                  list(request.headers.items()), body)
    headers = upstream.forward_headers(req, request.remote, shadow=False)
    primary = await call_primary(app, req, headers, 2**62,
                                 ingress.streamed(body, request) if oversized else None)
    if primary.error:
        return web.Response(status=502, text="diffsvc: primary upstream unavailable\n")
    reason = "skipped_body_too_large" if oversized else should_mirror(cfg, req, app[TRAFFIC])
    if reason is None:
        req.headers = ingress.clean_headers(req.headers)
        app[TRAFFIC].rewrite(req)
        counters["mirrored"] += 1
        app[SHADOWER].submit(req, primary, request.remote)
    else:
        counters[reason] += 1
    return _client_response(primary, req.method)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Clients, capture and shadower: created here, closed in reverse order on shutdown."""
    cfg, counters = app[CONFIG], app[COUNTERS]
    clients = upstream.Clients()
    assert cfg.redis_url is not None
    redis_url = cfg.redis_url
    capture = Capture(cfg, lambda: store.connect(redis_url), counters)
    capture.start()
    shadower = Shadower(cfg, clients, capture, counters)
    app[CLIENTS] = clients
    app[SHADOWER] = shadower
    log.info("gateway: primary %s, candidate %s%s", cfg.primary, cfg.candidate,
             f", secondary {cfg.secondary}" if cfg.secondary else "")
    yield
    await shadower.drain(DRAIN_TIMEOUT)
    await capture.close()
    await clients.close()


def build_app(cfg: Config) -> web.Application:
    if cfg.mode == "target":  # the destination of an Istio/Envoy/nginx mirror
        from . import target

        return target.build_app(cfg)
    cfg.require("primary", "redis_url")
    for name in ("candidate", "secondary"):
        if getattr(cfg, name) == cfg.primary:
            raise ConfigError(name, "must differ from primary: shadow requests are never sent "
                                    "to primary", getattr(cfg, name))
    return new_app(cfg, handle)


def new_app(cfg: Config, handler: ingress.Handler) -> web.Application:
    """The application of both modes: header and body limits, the ingress guard, config,
    counters, traffic control and the shared resources; `handler` serves every path."""
    limits = {"max_line_size": cfg.max_header_size, "max_field_size": cfg.max_header_size}
    app = web.Application(client_max_size=max(cfg.max_body, cfg.mirror_max_body + 1),
                          middlewares=[ingress.guard(COUNTERS)], handler_args=limits)
    app[CONFIG] = cfg
    app[COUNTERS] = Counter()
    app[TRAFFIC] = TrafficControl(cfg)
    app.cleanup_ctx.append(_resources)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def run(cfg: Config, *, reuse_port: bool = False) -> int:
    """Serve until SIGINT/SIGTERM; in-flight shadows drain, buffered exchanges are written.
    With `processes` > 1, that many forked processes share the port (SO_REUSEPORT); the
    exit status is the worst of theirs."""
    if cfg.processes > 1 and not reuse_port:
        from . import multiproc

        return multiproc.run(cfg.processes, lambda: _serve(cfg, reuse_port=True),
                             "diffsvc-gateway")
    _serve(cfg, reuse_port=reuse_port)
    return 0


def _serve(cfg: Config, *, reuse_port: bool) -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    host, port = split_listen(cfg.listen)
    app = build_app(cfg)
    print(f"diffsvc gateway listening on http://{host}:{port} → primary {cfg.primary}", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None,
                shutdown_timeout=DRAIN_TIMEOUT, reuse_port=reuse_port or None)
