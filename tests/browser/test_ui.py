"""The web UI in a real browser (Debian's headless chromium driven by Playwright), on real
data: demo upstreams → gateway → Redis → worker → report server.

Screenshots go to a temporary folder; `DIFFSVC_SCREENSHOTS=docs python -m pytest tests/browser`
refreshes the ones committed under docs/."""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from playwright import sync_api

CHROMIUM = Path("/usr/bin/chromium")
PRODUCTS = "GET /api/products/{id}"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = os.environ.get("DIFFSVC_SCREENSHOTS")
    return Path(target) if target else tmp_path


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def endpoint_api(base: str, name: str) -> dict:
    url = base + "/api/v1/endpoints/" + urllib.parse.quote(name, safe="")
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_overview_endpoint_exchange_and_ignore_field(demo_stack, browser, shots):
    base = demo_stack.report.url
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))

    # overview: every endpoint with its rate, the worst first, in its colour band
    page.goto(base + "/")
    page.wait_for_selector("#endpoints tbody tr")
    rows = page.locator("#endpoints tbody tr")
    assert rows.count() == 3
    first = rows.nth(0)
    assert first.get_attribute("data-endpoint") == PRODUCTS
    assert first.locator(".rate").inner_text() == "33.3%"
    assert "band-high" in (first.locator(".badge").get_attribute("class") or "")
    assert first.locator("svg.spark path").count() == 1
    assert rows.nth(1).locator(".rate").inner_text() == "0.0%"
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    # click → the endpoint page with its field table
    first.locator("a").click()
    page.wait_for_selector("#fields tbody tr")
    price = page.locator('#fields tr[data-path="$.price"]')
    assert price.locator("td").nth(1).inner_text() == "changed"
    assert price.locator("td.verdict").inner_text().startswith("regression")
    assert price.locator("td").nth(3).inner_text() == "10"
    assert page.locator("#samples li").count() == 10
    page.screenshot(path=str(shots / "endpoint.png"), full_page=True)

    # → an exchange whose differing field is highlighted on both sides
    page.locator("#samples li a").first.click()
    page.wait_for_selector("#diffs")
    for side in ("primary", "candidate"):
        line = page.locator(f'[data-side="{side}"] .ln[data-loc="$.price"]')
        assert "diff" in (line.get_attribute("class") or "")
        assert '"price"' in line.inner_text()
    assert page.locator('[data-side="primary"] .ln.diff').count() == 1
    assert page.locator("#curl").inner_text().startswith("curl ")
    page.locator("#copy-curl").click()
    page.wait_for_selector("#toast:not([hidden])")
    page.screenshot(path=str(shots / "exchange.png"), full_page=True)

    # "ignore this field" on the endpoint page: the rule is shown and workers apply it
    page.go_back()
    page.wait_for_selector('#fields tr[data-path="$.price"] .ignore-field')
    page.locator('#fields tr[data-path="$.price"] .ignore-field').click()
    page.wait_for_selector('#fields tr[data-path="$.price"].ignored')
    assert page.locator("#rules tbody tr").count() == 1
    assert "$.price" in page.locator("#rules").inner_text()

    before = endpoint_api(base, PRODUCTS)
    demo_stack.send([f"/api/products/{i}" for i in range(1, 31)])
    after = endpoint_api(base, PRODUCTS)
    assert after["totals"]["pairs"] == before["totals"]["pairs"] + 30
    assert after["totals"]["mismatches"] == before["totals"]["mismatches"]
    price_after = next(f for f in after["fields"] if f["path"] == "$.price")
    assert price_after["raw"] == 10  # the 10 new regressions were not counted

    page.reload()
    page.wait_for_selector('#fields tr[data-path="$.price"].ignored')
    page.goto(base + "/")
    page.wait_for_selector("#endpoints tbody tr")
    assert problems == []


def test_ui_with_a_token_asks_once_and_remembers(serve, r, make_config, browser):
    from diffsvc.report import server

    base = serve(server.build_app(make_config(report_token="t0ken"))).url
    page = browser.new_page()
    page.goto(base + "/")
    page.wait_for_selector("#token-input")
    page.fill("#token-input", "t0ken")
    page.locator("form button").click()
    page.wait_for_selector(".empty")  # no data yet, but the API answered
    page.reload()
    page.wait_for_selector(".empty")  # the token was kept
    page2 = browser.new_page()
    page2.goto(base + "/?token=t0ken#/rules")
    page2.wait_for_selector("text=Ignore rules added from the UI")
    assert "token=" not in page2.url


def test_a_dead_candidate_is_red_with_its_reasons_and_error_exchanges(serve, r, make_config,
                                                                      browser, shots):
    from diffsvc import gateway
    from diffsvc.demo import upstream
    from diffsvc.report import server
    from tests.conftest import run_worker_burst
    from tests.integration.demo_helpers import send, wait_captured
    from tests.integration.test_failing_candidate import closed_port

    cfg = make_config(primary=serve(upstream.build_app("prod")).url,
                      candidate=f"http://127.0.0.1:{closed_port()}", shadow_timeout=0.5)
    send(serve(gateway.build_app(cfg)).url, [f"/api/products/{i}" for i in range(1, 13)])
    wait_captured(r, 12)
    run_worker_burst(cfg)
    base = serve(server.build_app(cfg)).url
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    # overview: the endpoint is red (FAIL, no pair compared) and says why
    page.goto(base + "/")
    page.wait_for_selector("#endpoints tbody tr")
    row = page.locator("#endpoints tbody tr").first
    assert "band-row-high" in (row.get_attribute("class") or "")
    assert row.locator(".rate").inner_text() == "FAIL"
    assert "candidate errors 12/12 (connection refused) > 1%" in row.locator(".failure").inner_text()
    page.screenshot(path=str(shots / "overview-failing.png"), full_page=True)

    # the endpoint page: the failure, the error kinds and messages, the error exchanges
    row.locator("a").click()
    page.wait_for_selector("#errors")
    assert "FAIL" in page.locator("#failure").inner_text()
    errors = page.locator("#errors").inner_text()
    assert "12 of 12" in errors and "connection refused 12" in errors
    assert page.locator("#errors .reasons li").count() >= 1
    assert page.locator("#error-samples li").count() == 12
    page.screenshot(path=str(shots / "endpoint-failing.png"), full_page=True)

    # an error exchange opens: the candidate's column shows its error
    page.locator("#error-samples li a").first.click()
    page.wait_for_selector('[data-side="candidate"] .error-text')
    assert page.locator('[data-side="candidate"] .http-status').inner_text() == "error"
    assert page.locator('[data-side="primary"] .http-status').inner_text() == "HTTP 200"
    page.screenshot(path=str(shots / "exchange-error.png"), full_page=True)
    assert problems == []


def test_the_build_selector_shows_each_build_on_its_own(serve, r, make_config, browser):
    from diffsvc import gateway
    from diffsvc.report import server
    from tests.conftest import run_worker_burst
    from tests.integration.demo_helpers import send, wait_captured
    from tests.integration.test_builds import service

    state = {"build": "41"}
    cfg = make_config(primary=serve(service("prod", state)).url,
                      candidate=serve(service("candidate", state)).url, version_header="X-Build")
    gw = serve(gateway.build_app(cfg))
    for n, build in enumerate(("41", "42"), start=1):
        state["build"] = build
        send(gw.url, [f"/items/{i}" for i in range(20)])
        wait_captured(r, 20 * n)
        run_worker_burst(cfg)
    page = browser.new_page()
    page.goto(serve(server.build_app(cfg)).url + "/")
    page.wait_for_selector("#endpoints tbody tr")
    assert page.locator("#build option").all_inner_texts() == ["newest (42)", "42", "41"]
    assert page.locator("#endpoints tbody tr .rate").inner_text() == "0.0%"
    page.select_option("#build", "41")
    page.wait_for_selector("#endpoints tbody tr .failure")
    assert page.locator("#endpoints tbody tr .rate").inner_text() == "100.0%"


def test_clear_an_endpoint_then_everything(demo_stack, browser):
    """The UI's Clear buttons: as `diffsvc data clear [--endpoint NAME]`, after a confirm."""
    base = demo_stack.report.url
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(base + "/#/endpoint/" + urllib.parse.quote(PRODUCTS, safe=""))
    page.locator("#clear-endpoint").click()
    page.wait_for_selector("#endpoints tbody tr")  # back on the overview
    page.wait_for_function("document.querySelectorAll('#endpoints tbody tr').length === 2")
    assert PRODUCTS not in page.locator("#endpoints").inner_text()
    page.locator("#clear-data").click()
    page.wait_for_selector(".empty")
    with urllib.request.urlopen(base + "/api/v1/summary", timeout=10) as resp:
        assert json.loads(resp.read())["endpoints"] == []
