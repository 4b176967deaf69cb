"""Upstreams that build absolute URLs from the Host they are sent: through the real gateway,
Redis and a worker, their self-references compare equal; `forward_host` sends the client's
Host to every upstream instead. With timings too and no secondary, the rules `rules suggest`
prints leave only the real changes."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import yaml
from aiohttp import web
from redis import Redis

from diffsvc import config
from diffsvc.config import Config
from diffsvc.report import data
from tests.conftest import CRITERIA, ServedApp, run_worker_burst
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
    return data.build(r, CRITERIA).to_dict(), ups


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


def timed_service(version: str) -> web.Application:
    """The noise of the issue's real service: a timing in every JSON answer and in the page's
    footer, beside absolute URLs built from the Host."""

    async def rows(request: web.Request) -> web.Response:
        page = int(request.query.get("page", "1"))
        return web.json_response({"rows": [page], "version": version,
                                  "query_ms": round(random.uniform(0.5, 40.0), 3),
                                  "next_url": f"http://{request.host}/rows?page={page + 1}"})

    async def html(request: web.Request) -> web.Response:
        took = round(random.uniform(0.5, 40.0), 1)
        return web.Response(text=f'<html><body><a href="http://{request.host}/rows">rows</a>'
                                 f"<footer>app {version} <span>Queries took {took}ms</span>"
                                 "</footer></body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/rows", rows)
    app.router.add_get("/", html)
    return app


def test_without_secondary_suggested_rules_leave_only_the_real_changes(serve, make_config,
                                                                       redis_url, r) -> None:
    prod, cand = serve(timed_service("1.0")), serve(timed_service("1.1"))
    paths = ["/rows?page=1", "/rows?page=2", "/"]

    def crawl(routes: list[dict[str, Any]]) -> dict[str, list[str]]:
        r.flushall()
        cfg = make_config(primary=prod.url, candidate=cand.url,
                          routes=config.parse_routes("routes", routes))
        gw = gateway_for(serve, cfg)
        for _ in range(3):
            for path in paths:
                assert fetch(gw.url, path)[0] == 200
        wait_until(lambda: counters(gw).get("captured", 0) >= 3 * len(paths), "captured")
        run_worker_burst(cfg)
        return {e["endpoint"]: sorted(f["path"] for f in e["fields"])
                for e in data.build(r, CRITERIA).to_dict()["endpoints"]}

    real = {"GET /rows": ["$.version"], "GET /": ["$.html[*].body[*].footer[*]['#text']"]}
    first = crawl([])
    assert first == {"GET /rows": ["$.query_ms", "$.version"],
                     "GET /": ["$.html[*].body[*].footer[*].span[*]['#text']",
                               "$.html[*].body[*].footer[*]['#text']"]}
    done = subprocess.run([sys.executable, "-m", "diffsvc", "rules", "suggest",
                           "--redis-url", redis_url], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("looks like a timing") == 2, done.stdout
    assert crawl(yaml.safe_load(done.stdout)["routes"]) == real
