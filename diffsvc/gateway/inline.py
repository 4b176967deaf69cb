"""The inline gateway: every client gets primary's response, byte for byte, as soon as it is
read; a copy of the request goes to candidate (and secondary) in the background. Served by
the lean HTTP/1.1 server (diffsvc.gateway.server, diffsvc.gateway.http11)."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from diffsvc.config import Config
from diffsvc.core.models import Reply, Request
from diffsvc.errors import ConfigError
from diffsvc.gateway import http11, ingress, server, tunnel, upstream
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


def _client_response(reply: Reply, method: str) -> http11.Response:
    if method == "HEAD":  # no body: primary's Content-Length is the one to pass on
        return http11.Response(reply.status, upstream.end_to_end(reply.headers), head=True)
    headers = [(k, v) for k, v in upstream.end_to_end(reply.headers)
               if len(k) != 14 or k.lower() != "content-length"]
    return http11.Response(reply.status, headers, reply.body)


def _is_websocket(incoming: http11.Incoming) -> bool:
    return ((incoming.header("Upgrade") or "").lower() == "websocket"
            and "upgrade" in (incoming.header("Connection") or "").lower())


async def _websocket(app: web.Application, incoming: http11.Incoming,
                     ) -> http11.Response | tunnel.Tunnel:
    cfg = app[CONFIG]
    assert cfg.primary is not None
    headers = CIMultiDict(incoming.headers)  # the handshake's own headers go along
    if incoming.remote:
        upstream.append_header(headers, "X-Forwarded-For", incoming.remote)
    opened = await tunnel.open_websocket(cfg.primary, incoming.method, incoming.target,
                                         headers.items(), cfg.primary_timeout, app[COUNTERS],
                                         app[CLIENTS].ssl_context)
    if isinstance(opened, tunnel.Tunnel):
        return opened
    if opened == 502:
        return http11.text(502, "diffsvc: primary upstream unavailable\n")
    return http11.text(opened, "diffsvc: primary refused the WebSocket upgrade\n")


async def handle(app: web.Application, incoming: http11.Incoming,
                 ) -> http11.Response | tunnel.Tunnel:
    cfg, counters = app[CONFIG], app[COUNTERS]
    refused = ingress.refusal(incoming.method, incoming.target,
                              incoming.header(upstream.SHADOW_HEADER) is not None)
    if refused is not None:
        status, message, counter = refused
        counters[counter] += 1
        return http11.text(status, f"diffsvc: {message}\n", close=status >= 500)
    counters["requests"] += 1
    assert cfg.primary is not None
    if incoming.upgrade and _is_websocket(incoming):
        return await _websocket(app, incoming)
    body, oversized = await incoming.read(cfg.mirror_max_body)
    path, _, query = incoming.target.partition("?")
    req = Request(incoming.method, path, query, incoming.headers, body)
    headers = upstream.forward_headers(req, incoming.remote, shadow=False,
                                       forward_host=cfg.forward_host)
    primary = await call_primary(app, req, headers, 2**62,
                                 incoming.stream(body) if oversized else None)
    if primary.error:
        return http11.text(502, "diffsvc: primary upstream unavailable\n")
    reason = "skipped_body_too_large" if oversized else should_mirror(cfg, req, app[TRAFFIC])
    if reason is None:
        sent = req.headers
        req.headers = ingress.clean_headers(req.headers)
        app[TRAFFIC].rewrite(req)
        counters["mirrored"] += 1
        app[SHADOWER].submit(req, primary, incoming.remote,
                             headers if req.headers is sent else None)
    else:
        counters[reason] += 1
    return _client_response(primary, req.method)


def build_app(cfg: Config) -> web.Application:
    cfg.require("primary", "redis_url")
    for name in ("candidate", "secondary"):
        if getattr(cfg, name) == cfg.primary:
            raise ConfigError(name, "must differ from primary: shadow requests are never sent "
                                    "to primary", getattr(cfg, name))
    app = new_app(cfg, None)
    app[server.HANDLER] = handle
    app[server.MAX_HEADER_SIZE] = cfg.max_header_size
    return app
