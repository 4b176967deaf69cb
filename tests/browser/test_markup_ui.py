"""The exchange page highlights the differing HTML elements and text lines (real upstreams,
gateway, Redis, worker, report server; Debian's headless chromium driven by Playwright)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

from aiohttp import web

from diffsvc import gateway
from diffsvc.report import server
from tests.browser.test_ui import pytestmark  # noqa: F401 (skipped without chromium)
from tests.conftest import run_worker_burst
from tests.integration.test_gateway import counters, fetch, wait_until

CSS = "body {{ margin: 0; }}\nh1 {{ color: {color}; }}\np {{ margin: 0; }}\na {{ color: {link}; }}\n"


def site(version: str, color: str) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=f'<!doctype html><html><head><title>Shop</title></head><body>'
                                 f'<h1>Rows</h1><p>one<p>two</p><footer>Shop {version} '
                                 f'<span>took 3 ms</span></footer></body></html>',
                            content_type="text/html")

    async def css(request: web.Request) -> web.Response:
        return web.Response(text=CSS.format(color=color, link="blue" if color == "red" else "navy"),
                            content_type="text/css")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/site.css", css)
    return app


def sample(base: str, endpoint: str) -> str:
    url = base + "/api/v1/endpoints/" + urllib.parse.quote(endpoint, safe="")
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(json.loads(resp.read())["samples"][0]["id"])


def test_differing_elements_and_lines_are_highlighted(serve, make_config, r, browser,
                                                      shots) -> None:
    prod, cand = serve(site("1.0", "red")), serve(site("1.1", "green"))
    cfg = make_config(primary=prod.url, candidate=cand.url)
    gw = serve(gateway.build_app(cfg))
    for path in ("/", "/site.css"):
        assert fetch(gw.url, path)[0] == 200
    wait_until(lambda: counters(gw).get("captured", 0) >= 2, "captured")
    run_worker_burst(cfg)
    report = serve(server.build_app(cfg))
    page = browser.new_page(viewport={"width": 1360, "height": 900})

    page.goto(report.url + "/#/exchange/" + sample(report.url, "GET /"))
    page.wait_for_selector("#diffs")
    for side in ("primary", "candidate"):
        marked = page.locator(f'[data-side="{side}"] .ln.diff')
        assert marked.count() == 1
        assert marked.get_attribute("data-loc") == "$.html[0].body[0].footer[0]"
        assert "Shop" in marked.inner_text()
    assert page.locator('[data-side="primary"] .ln[data-loc="$.html[0].body[0].p[1]"]').count() == 1
    page.screenshot(path=str(shots / "exchange-html.png"), full_page=True)

    page.goto(report.url + "/#/exchange/" + sample(report.url, "GET /site.css"))
    page.wait_for_selector("#diffs")
    for side in ("primary", "candidate"):
        marked = page.locator(f'[data-side="{side}"] .ln.diff')
        assert [marked.nth(i).get_attribute("data-loc") for i in range(marked.count())] == [
            "$.line[2]", "$.line[4]"]
