"""Upstreams that build absolute URLs from the Host they are sent: through the real gateway,
Redis and a worker, their self-references compare equal; `forward_host` sends the client's
Host to every upstream instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from redis import Redis

from diffsvc.config import Config
from diffsvc.report import data
from tests.conftest import ServedApp, run_worker_burst
from tests.integration.test_gateway import counters, fetch, gateway_for, wait_until

HOSTS = web.AppKey("hosts", list)


def service(version: str) -> web.Application:
    """Pagination links, a Location and an HTML link, all absolute, from the request's Host."""

    async def items(request: web.Request) -> web.Response:
        request.app[HOSTS].append(request.host)
        base = f"{request.scheme}://{request.host}"
        page = int(request.query.get("page", "1"))
        resp = web.json_response({"items": [page], "version": version,
                                  "next_url": f"{base}/items?page={page + 1}"})
        resp.headers["Link"] = f'<{base}/items?page={page + 1}>; rel="next"'
        return resp

    async def moved(request: web.Request) -> web.Response:
        request.app[HOSTS].append(request.host)
        raise web.HTTPFound(f"http://{request.host}/items?page=1")

    async def html(request: web.Request) -> web.Response:
        request.app[HOSTS].append(request.host)
        return web.Response(text=f'<html><body><a href="http://{request.host}/items">items</a>'
                                 f"<footer>{version}</footer></body></html>",
                            content_type="text/html")

    app = web.Application()
    app[HOSTS] = []
    app.router.add_get("/items", items)
    app.router.add_get("/old-items", moved)
    app.router.add_get("/", html)
    return app


def run(serve: Callable[[web.Application], ServedApp], make_config: Callable[..., Config],
        r: Redis, **settings: object) -> tuple[dict[str, Any], dict[str, ServedApp]]:
    ups = {"primary": serve(service("1.0")), "secondary": serve(service("1.0")),
           "candidate": serve(service("1.1"))}
    cfg = make_config(**{k: v.url for k, v in ups.items()}, **settings)
    gw = gateway_for(serve, cfg)
    paths = ["/items?page=1", "/items?page=2", "/old-items", "/"]
    for path in paths:
        assert fetch(gw.url, path, headers={"Host": "shop.example.com"})[0] in (200, 302)
    wait_until(lambda: counters(gw).get("captured", 0) >= len(paths), "captured")
    run_worker_burst(cfg)
    return data.build(r), ups


def test_self_references_compare_equal_and_real_changes_remain(serve, make_config, r) -> None:
    report, ups = run(serve, make_config, r)
    for app in ups.values():  # each upstream was sent its own host:port
        assert set(app.app[HOSTS]) == {app.url.split("://")[1]}
    fields = {e["endpoint"]: sorted(f["path"] for f in e["fields"]) for e in report["endpoints"]}
    assert fields == {"GET /items": ["$.version"], "GET /old-items": [],
                      "GET /": ["$.html[*].body[*].footer[*]['#text']"]}, report


def test_forward_host_sends_the_clients_host_to_every_upstream(serve, make_config, r) -> None:
    _, ups = run(serve, make_config, r, forward_host=True)
    for app in ups.values():
        assert set(app.app[HOSTS]) == {"shop.example.com"}
