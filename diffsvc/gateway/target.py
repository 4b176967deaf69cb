"""Mirror-target mode (`diffsvc gateway --mode target`): diffsvc is the destination of an
existing mirror (Istio `mirror`, Envoy `request_mirror_policies`, nginx `mirror`).

The mirrored copy is answered at once (202, empty body: the mirror's sender ignores it);
in tracked, bounded background work the copy (less the `-shadow` Host suffix Envoy and
Istio add) goes to a primary-build instance, then, through the gateway's Shadower, to the
candidate (and secondary), and the exchange is captured like the inline gateway's."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from diffsvc.config import Config
from diffsvc.core.models import Headers, Request
from diffsvc.errors import ConfigError
from diffsvc.gateway import app as gateway
from diffsvc.gateway import ingress, upstream
from diffsvc.gateway.shadow import BoundedTasks

SHADOW_SUFFIX = "-shadow"


def strip_shadow_host(host: str) -> str:
    """`api.example.com-shadow:8080` → `api.example.com:8080` (Envoy/Istio mirror Host)."""
    name, sep, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not sep or not port.isdigit():
        name, sep, port = host, "", ""
    if name.endswith(SHADOW_SUFFIX):
        name = name[: -len(SHADOW_SUFFIX)]
    return f"{name}{sep}{port}"


def unshadow_headers(headers: Headers) -> Headers:
    return [(k, strip_shadow_host(v)) if k.lower() in ("host", ":authority") else (k, v)
            for k, v in headers]


class Forwarder:
    """Primary-build call then the shadows, as tracked tasks, at most `max_inflight` at once."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.work = BoundedTasks(app[gateway.CONFIG].max_inflight, app[gateway.COUNTERS])

    def submit(self, request: Request, client_ip: str | None) -> None:
        self.work.start(self._run, request, client_ip)

    async def _run(self, req: Request, client_ip: str | None) -> None:
        cfg = self.app[gateway.CONFIG]
        headers = upstream.forward_headers(req, client_ip, shadow=False,
                                           forward_host=cfg.forward_host)
        primary = await gateway.call_primary(self.app, req, headers, cfg.max_body)
        if not primary.error:
            self.app[gateway.COUNTERS]["mirrored"] += 1
            self.app[gateway.SHADOWER].submit(req, primary, client_ip)


FORWARDER = web.AppKey("forwarder", Forwarder)


async def handle(request: web.Request) -> web.StreamResponse:
    app = request.app
    cfg, counters = app[gateway.CONFIG], app[gateway.COUNTERS]
    counters["requests"] += 1
    body, oversized = await ingress.read_body(request, cfg.mirror_max_body)
    if oversized:
        counters["skipped_body_too_large"] += 1
        return web.Response(status=202)
    req = Request(request.method, request.rel_url.raw_path, request.rel_url.raw_query_string,
                  unshadow_headers(list(request.headers.items())), body)
    reason = gateway.should_mirror(cfg, req, app[gateway.TRAFFIC])
    if reason is not None:
        counters[reason] += 1
        return web.Response(status=202)
    req.headers = ingress.clean_headers(req.headers)
    app[gateway.TRAFFIC].rewrite(req)  # both calls are shadow calls here
    app[FORWARDER].submit(req, request.remote)
    return web.Response(status=202)


async def _forwarder(app: web.Application) -> AsyncIterator[None]:
    """After the gateway's resources: drained first, before the shadower and capture close."""
    app[FORWARDER] = Forwarder(app)
    yield
    await app[FORWARDER].work.drain(gateway.DRAIN_TIMEOUT)


def build_app(cfg: Config) -> web.Application:
    cfg.require("primary", "candidate", "redis_url")
    for name in ("candidate", "secondary"):
        if getattr(cfg, name) == cfg.primary:
            raise ConfigError(name, "must differ from primary (the primary-build instance)",
                              getattr(cfg, name))
    app = gateway.new_app(cfg, handle)
    app.cleanup_ctx.append(_forwarder)
    return app
