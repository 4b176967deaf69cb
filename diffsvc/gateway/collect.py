"""Collect mode (`diffsvc gateway --mode collect`): a proxy in front of production (Envoy,
Istio, nginx; `diffsvc proxy-config` writes their configs) ships each exchange it served, the
client's request and production's actual response, to `collectwire.EXCHANGES_PATH`.

Production is called once, by the proxy; diffsvc does only the shadow side. Each exchange is
answered 202 as soon as it is read; traffic control (allow/deny, side effects, sampling, rate
cap) decides as in the inline gateway, and the candidate (and secondary) calls run in the
gateway's bounded Shadower (beyond `max_inflight`: dropped and counted). A `primary` in the
config file is accepted and not used."""

from __future__ import annotations

import hmac

from aiohttp import web

from diffsvc.config import Config, require_token
from diffsvc.core.histograms import LATENCY
from diffsvc.gateway import collectwire, ingress
from diffsvc.gateway.app import CONFIG, COUNTERS, SHADOWER, TRAFFIC, new_app, should_mirror
from diffsvc.gateway.upstream import SHADOW_HEADER

_HEADROOM = 64 * 1024  # method, target and headers around the bodies


def wire_cap(cfg: Config) -> int:
    """The largest document taken: both bodies at their caps, base64 (4/3), and headers."""
    return (cfg.mirror_max_body + cfg.max_body) * 4 // 3 + 8 + _HEADROOM


async def _read(request: web.Request, cap: int) -> bytes | None:
    """The whole body, or None past `cap` (read as a stream: aiohttp's client_max_size is the
    inline gateway's)."""
    if request.content_length is not None and request.content_length > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _authorized(request: web.Request, token: str | None) -> bool:
    if not token:
        return True
    auth = request.headers.get("Authorization", "")
    presented = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    return hmac.compare_digest(presented.encode(), token.encode())


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def handle(request: web.Request) -> web.StreamResponse:
    app = request.app
    cfg, counters = app[CONFIG], app[COUNTERS]
    if request.path == collectwire.OPENAPI_PATH and request.method == "GET":
        return web.json_response(collectwire.OPENAPI)
    if request.path != collectwire.EXCHANGES_PATH:
        return _error(404, f"the collector takes exchanges at POST {collectwire.EXCHANGES_PATH}")
    if request.method != "POST":
        return _error(405, "POST an exchange")
    if not _authorized(request, cfg.collect_token):
        counters["collect_unauthorized"] += 1
        return _error(401, "missing or wrong bearer token (collect.token)")
    counters["requests"] += 1
    raw = await _read(request, wire_cap(cfg))
    if raw is None:
        counters["skipped_body_too_large"] += 1
        return _error(413, f"an exchange is at most {wire_cap(cfg)} bytes (mirror_max_body and "
                           "max_body, base64)")
    try:
        shipped = collectwire.parse(raw)
    except collectwire.WireError as exc:
        counters["collect_invalid"] += 1
        return _error(400, str(exc))
    req = shipped.request
    if req.header_value(SHADOW_HEADER) is not None:  # a candidate URL pointing at the proxy
        counters["refused_shadow_loop"] += 1
        return web.Response(status=202)
    if (shipped.truncated or len(req.body) > cfg.mirror_max_body
            or len(shipped.primary.body) > cfg.max_body):
        reason: str | None = "skipped_body_too_large"
    else:
        reason = should_mirror(cfg, req, app[TRAFFIC])
    if reason is not None:
        counters[reason] += 1
        return web.Response(status=202)
    req.headers = ingress.clean_headers(req.headers)
    app[TRAFFIC].rewrite(req)
    counters["mirrored"] += 1
    if shipped.primary.elapsed_ms:
        LATENCY["primary"].observe(counters, shipped.primary.elapsed_ms)
    app[SHADOWER].submit(req, shipped.primary, shipped.client_ip or request.remote)
    return web.Response(status=202)


def check_access(cfg: Config) -> None:
    """Refuse to listen beyond loopback without a token: anyone could inject exchanges."""
    require_token("collect.token", cfg.collect_token, "listen", cfg.listen)


def build_app(cfg: Config) -> web.Application:
    cfg.require("candidate", "redis_url")
    check_access(cfg)
    return new_app(cfg, handle)
