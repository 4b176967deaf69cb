"""Comparison runs per candidate build: two builds in a row, each judged on its own data by
the report, the gate, the web API and the metrics (newest by default, an older on request)."""

from __future__ import annotations

import urllib.parse
import urllib.request

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from diffsvc import cli, gateway
from diffsvc.core.models import Reply, stamp
from diffsvc.report import data, gate, server
from tests.conftest import CRITERIA, run_worker_burst
from tests.integration.demo_helpers import send, wait_captured
from tests.integration.test_metrics import scrape
from tests.integration.test_report_server import call, ep

ITEMS = "GET /items/{id}"
N = 40


def service(role: str, state: dict[str, str]) -> web.Application:
    """Build 41 of the candidate charges one more; build 42 is right again."""

    async def item(request: web.Request) -> web.Response:
        i = int(request.match_info["id"])
        wrong = role == "candidate" and state["build"] == "41"
        headers = {"X-Build": state["build"]} if role == "candidate" else {}
        return web.json_response({"id": i, "price": 11 if wrong else 10}, headers=headers)

    app = web.Application()
    app.router.add_get("/items/{id}", item)
    return app


def test_stamp_prefers_the_candidates_header() -> None:
    assert stamp(Reply(headers=[("x-build", " 42 ")]), "X-Build", "41") == "42"
    assert stamp(Reply(), "X-Build", "41") == "41"
    assert stamp(Reply(headers=[("X-Build", "42")]), None, None) == ""


def test_two_builds_in_a_row_are_judged_each_on_its_own_data(serve, make_config, r: Redis,
                                                               redis_url: str, capsys) -> None:
    state = {"build": "41"}
    cfg = make_config(primary=serve(service("prod", state)).url,
                      candidate=serve(service("candidate", state)).url, version_header="X-Build")
    gw = serve(gateway.build_app(cfg))
    send(gw.url, [f"/items/{i}" for i in range(N)])
    wait_captured(r, N)
    run_worker_burst(cfg)
    state["build"] = "42"
    send(gw.url, [f"/items/{i}" for i in range(N)])
    wait_captured(r, 2 * N)
    run_worker_burst(cfg)

    # the report: the newest build by default, never mixed with the last one
    newest = data.build(r, CRITERIA)
    assert (newest.build, newest.builds) == ("42", ("42", "41"))
    [entry] = newest.endpoints
    assert (entry.endpoint, entry.pairs, entry.mismatches, entry.classification) == (
        ITEMS, N, 0, "clean")
    [old] = data.build(r, CRITERIA, of_build="41").endpoints
    assert (old.pairs, old.mismatches, old.classification) == (N, N, "regression")

    # the gate: CLI and HTTP, newest by default, the older on request
    base = ["gate", "--redis-url", redis_url, "--window", "5m", "--max-mismatch-rate", "0.1",
            "--min-pairs", "20"]
    assert cli.main(base) == 0
    assert cli.main([*base, "--build", "41"]) == 1
    assert "mismatch rate 100.00% (40/40)" in capsys.readouterr().out
    assert gate.run(r, gate.GateParams(min_pairs=20), CRITERIA).build == "42"
    app = serve(server.build_app(cfg))
    query = urllib.parse.urlencode({"build": "41", "min_pairs": "20"})
    status, body = call(app.url, "/api/v1/gate?" + query)
    assert (status, body["verdict"], body["build"]) == (412, "fail", "41")

    # the web API and the metrics
    status, overview = call(app.url, "/api/v1/summary?window=15m")
    assert (overview["build"], overview["builds"]) == ("42", ["42", "41"])
    assert [e["mismatches"] for e in overview["endpoints"]] == [0]
    status, detail = call(app.url, ep(ITEMS) + "?build=41")
    assert (status, detail["build"], detail["totals"]["mismatches"]) == (200, "41", N)
    assert detail["summary"]["mismatches"] == N
    mismatches = ("diffsvc_mismatches_total", (("endpoint", ITEMS),))
    assert scrape(app.url)[mismatches] == 0
    with urllib.request.urlopen(app.url + "/metrics?build=41", timeout=10) as resp:
        older = {(m.name, tuple(sorted(m.labels.items()))): m.value
                 for fam in text_string_to_metric_families(resp.read().decode())
                 for m in fam.samples}
    assert older[mismatches] == N
