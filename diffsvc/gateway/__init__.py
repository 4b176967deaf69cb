"""Ways in: the inline gateway in front of primary, target mode behind an existing mirror,
collect mode fed by a proxy. `build_app` picks the mode's application; `serve` runs one
process of it: on the lean HTTP/1.1 server (diffsvc.gateway.server) when the application
has a server.HANDLER, else on aiohttp (the `--processes` supervisor is
diffsvc.ops.processes)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from aiohttp import web

from diffsvc.config import Config, logs, split_listen, tls
from diffsvc.gateway import collect, inline, server, target
from diffsvc.gateway.app import COUNTERS, DRAIN_TIMEOUT
from diffsvc.storage.waiting import where

MODES = {"inline": inline.build_app, "target": target.build_app, "collect": collect.build_app}
PROGRESS = {"requests": ("requests",), "mirrored": ("mirrored",),
            "dropped": ("shadow_dropped", "capture_dropped"), "captured": ("captured",),
            "capture failed": ("capture_failed",)}
log = logging.getLogger("diffsvc.gateway")


def build_app(cfg: Config) -> web.Application:
    return MODES[cfg.mode](cfg)


def start_line(cfg: Config) -> str:
    assert cfg.redis_url is not None
    scheme = "https" if cfg.tls_listen_cert_file else "http"
    to = "collecting exchanges" if cfg.mode == "collect" else f"primary {cfg.primary}"
    return (f"gateway listening on {scheme}://{cfg.listen} ({cfg.mode} mode) → {to}, "
            f"candidate {cfg.candidate}" + (f", secondary {cfg.secondary}" if cfg.secondary else "")
            + f"; Redis {where(cfg.redis_url)}; config {logs.digest(cfg)}")


def serve(cfg: Config, *, reuse_port: bool = False) -> None:
    """Serve until SIGINT/SIGTERM; in-flight shadows drain, buffered exchanges are written."""
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    host, port = split_listen(cfg.listen)
    app = build_app(cfg)
    counters: Counter[str] = app[COUNTERS]
    ticker = logs.Ticker(logs.Progress(log, "gateway", lambda: counters, PROGRESS), cfg.log_interval)
    app.on_startup.append(ticker.start)
    app.on_cleanup.append(ticker.stop)
    if cfg.candidate is None:
        log.warning("no candidate set (--candidate): requests go to primary only, "
                    "nothing is mirrored or compared")
    if server.HANDLER in app:  # the lean HTTP/1.1 server (inline mode)
        server.run(app, host, port, shutdown_timeout=DRAIN_TIMEOUT, reuse_port=reuse_port,
                   ssl=tls.gateway_context(cfg), started=lambda: log.info(start_line(cfg)))
        return
    web.run_app(app, host=host, port=port, access_log=None, print=lambda _: log.info(start_line(cfg)),
                shutdown_timeout=DRAIN_TIMEOUT, reuse_port=reuse_port or None,
                ssl_context=tls.gateway_context(cfg))


__all__ = ["COUNTERS", "MODES", "build_app", "serve"]
