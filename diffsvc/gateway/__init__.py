"""Ways in: the inline gateway in front of primary, and target mode behind an existing
mirror. `build_app` picks the mode's application; `serve` runs one process of it (the
`--processes` supervisor is diffsvc.ops.processes)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from diffsvc.config import Config, split_listen
from diffsvc.gateway import collect, inline, target
from diffsvc.gateway.app import COUNTERS, DRAIN_TIMEOUT

MODES = {"inline": inline.build_app, "target": target.build_app, "collect": collect.build_app}


def build_app(cfg: Config) -> web.Application:
    return MODES[cfg.mode](cfg)


def serve(cfg: Config, *, reuse_port: bool = False) -> None:
    """Serve until SIGINT/SIGTERM; in-flight shadows drain, buffered exchanges are written."""
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    host, port = split_listen(cfg.listen)
    app = build_app(cfg)
    to = "collecting exchanges" if cfg.mode == "collect" else f"primary {cfg.primary}"
    print(f"diffsvc gateway listening on http://{host}:{port} → {to}", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None,
                shutdown_timeout=DRAIN_TIMEOUT, reuse_port=reuse_port or None)


__all__ = ["COUNTERS", "MODES", "build_app", "serve"]
