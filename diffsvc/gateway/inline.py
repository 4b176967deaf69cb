"""The inline gateway: every client gets primary's response, byte for byte, as soon as it is
read; a copy of the request goes to candidate (and secondary) in the background."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from diffsvc.config import Config
from diffsvc.core.models import Reply, Request
from diffsvc.errors import ConfigError
from diffsvc.gateway import ingress, upstream
from diffsvc.gateway.app import (
    CLIENTS,
    CONFIG,
    COUNTERS,
    SHADOWER,
    TRAFFIC,
    call_primary,
    new_app,
    should_mirror,
)


def _client_response(reply: Reply, method: str = "GET") -> web.Response:
    headers: CIMultiDict[str] = CIMultiDict()
    head = method == "HEAD"  # no body: primary's Content-Length is the one to pass on
    for name, value in upstream.end_to_end(reply.headers):
        if head or name.lower() != "content-length":
            headers.add(name, value)
    return web.Response(status=reply.status, headers=headers, body=None if head else reply.body)


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
    headers = upstream.forward_headers(req, request.remote, shadow=False,
                                       forward_host=cfg.forward_host)
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


def build_app(cfg: Config) -> web.Application:
    cfg.require("primary", "redis_url")
    for name in ("candidate", "secondary"):
        if getattr(cfg, name) == cfg.primary:
            raise ConfigError(name, "must differ from primary: shadow requests are never sent "
                                    "to primary", getattr(cfg, name))
    return new_app(cfg, handle)
