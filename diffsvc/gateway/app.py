"""What every gateway mode shares: the application's keys (config, counters, clients,
shadower, traffic control), its construction with the ingress guard and limits, the
resources created and closed in its cleanup context, and the counted call to primary."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web
from multidict import CIMultiDict

from diffsvc.config import Config, tls
from diffsvc.config.appkey import CONFIG
from diffsvc.core.histograms import LATENCY
from diffsvc.core.models import Reply, Request
from diffsvc.core.traffic import TrafficControl
from diffsvc.gateway import ingress, upstream
from diffsvc.gateway.capture import Capture
from diffsvc.gateway.shadow import Shadower
from diffsvc.storage import store

log = logging.getLogger("diffsvc.gateway")

DRAIN_TIMEOUT = 5.0

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


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Clients, capture and shadower: created here, closed in reverse order on shutdown."""
    cfg, counters = app[CONFIG], app[COUNTERS]
    clients = upstream.Clients(tls.client_context(cfg))
    assert cfg.redis_url is not None
    redis_url = cfg.redis_url
    capture = Capture(cfg, lambda: store.connect(redis_url), counters)
    capture.start()
    shadower = Shadower(cfg, clients, capture, counters)
    app[CLIENTS] = clients
    app[SHADOWER] = shadower
    yield
    await shadower.drain(DRAIN_TIMEOUT)
    await capture.close()
    await clients.close()


def new_app(cfg: Config, handler: ingress.Handler | None) -> web.Application:
    """The application of every mode: header and body limits, the ingress guard, config,
    counters, traffic control and the shared resources; `handler` serves every path when
    aiohttp serves the mode (None: the lean server does, diffsvc.gateway.server)."""
    limits = {"max_line_size": cfg.max_header_size, "max_field_size": cfg.max_header_size}
    app = web.Application(client_max_size=max(cfg.max_body, cfg.mirror_max_body + 1),
                          middlewares=[ingress.guard(COUNTERS)], handler_args=limits)
    app[CONFIG] = cfg
    app[COUNTERS] = Counter()
    app[TRAFFIC] = TrafficControl(cfg)
    app.cleanup_ctx.append(_resources)
    if handler is not None:
        app.router.add_route("*", "/{tail:.*}", handler)
    return app
