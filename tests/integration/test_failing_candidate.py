"""A candidate that cannot answer never passes: dead (connection refused), hanging (timeout)
and resetting connections each fail every gate surface — CLI gate, HTTP gate (GET, Flagger's
POST, Argo's inconclusive=pass), `replay --gate`, JUnit, Markdown, the notifier — with the
reason in the report, the web API and the metrics. Real upstreams, real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from aiohttp import web
from redis import Redis

from diffsvc import cli, gateway
from diffsvc.config import Config
from diffsvc.report import data, formats, gate, notifier, server
from diffsvc.report.verdict import Criteria
from tests.conftest import ServedApp, run_worker_burst
from tests.integration.demo_helpers import send, wait_captured
from tests.integration.test_metrics import scrape
from tests.integration.test_report_server import call, ep

N = 15
ENDPOINT = "GET /items/{id}"


def production() -> web.Application:
    async def item(request: web.Request) -> web.Response:
        return web.json_response({"id": int(request.match_info["id"]), "price": 10})

    app = web.Application()
    app.router.add_get("/items/{id}", item)
    return app


def hanging() -> web.Application:
    async def item(_request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/items/{id}", item)
    return app


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def resetting() -> Iterator[str]:
    """A server that accepts each connection and resets it (RST: SO_LINGER 0)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                conn.recv(1024)
            conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(2)
    listener.close()


@pytest.fixture(params=["dead", "hanging", "resetting"])
def failing(request: pytest.FixtureRequest, serve: Callable[[web.Application], ServedApp],
            make_config: Callable[..., Config], r: Redis) -> tuple[Config, str]:
    """N requests through a real gateway to a real production and a failing candidate,
    compared; returns the config and the error kind expected."""
    if request.param == "dead":
        candidate, kind = f"http://127.0.0.1:{closed_port()}", "connect"
    elif request.param == "hanging":
        candidate, kind = serve(hanging()).url, "timeout"
    else:
        candidate, kind = request.getfixturevalue("resetting"), "reset"
    cfg = make_config(primary=serve(production()).url, candidate=candidate, shadow_timeout=0.5)
    gw = serve(gateway.build_app(cfg))
    send(gw.url, [f"/items/{i}" for i in range(N)])
    wait_captured(r, N)
    run_worker_burst(cfg)
    return cfg, kind


def _get(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    base, _, path = url.partition("/api/")
    return call(base, "/api/" + path, "POST" if body else "GET", body)


def test_a_failing_candidate_fails_every_surface(failing: tuple[Config, str], serve,
                                                 r: Redis, redis_url: str, capsys) -> None:
    cfg, kind = failing
    criteria = Criteria.from_config(cfg)

    # the report: the errors, their kind and messages, and a failure that says what decided
    report = data.build(r, criteria)
    [entry] = report.endpoints
    errs = entry.candidate_errors
    assert (errs.candidate, errs.attempts, dict(errs.kinds)) == (N, N, {kind: N}), errs
    assert errs.reasons and errs.samples
    reason = entry.failure(0.0)
    assert reason is not None and f"candidate errors {N}/{N}" in reason and "> 1%" in reason
    assert json.loads(formats.as_json(report))["endpoints"][0]["candidate_errors"]["kinds"] == \
        {kind: N}
    assert "candidate errors" in formats.as_table(report, 0.0)
    assert formats.as_markdown(report, 0.5).startswith("### ❌")
    junit = ET.fromstring(formats.as_junit(report, 0.5))
    assert junit.get("failures") == "1"
    failure = next(junit.iter("failure"))
    assert failure.get("type") == "CandidateErrors" and "candidate errors" in failure.get(
        "message", "")

    # the CLI gate: exit 1, however few compared pairs
    assert cli.main(["gate", "--redis-url", redis_url, "--window", "5m"]) == 1
    assert f"candidate errors {N}/{N}" in capsys.readouterr().out

    # the HTTP gate, Flagger's webhook and Argo's (inconclusive mapped to pass) all answer 412
    app = serve(server.build_app(cfg))
    status, body = _get(app.url + "/api/v1/gate?window=5m")
    assert (status, body["verdict"], body["candidate_errors"]) == (412, "fail", N), body
    assert "candidate errors" in body["reason"]
    status, body = _get(app.url + "/api/v1/gate", {"name": "shop", "namespace": "prod",
                                                   "phase": "Progressing",
                                                   "metadata": {"endpoint": ENDPOINT}})
    assert (status, body["verdict"]) == (412, "fail")
    query = urllib.parse.urlencode({"endpoint": ENDPOINT, "inconclusive": "pass"})
    status, body = _get(app.url + "/api/v1/gate?" + query)
    assert (status, body["verdict"]) == (412, "fail")

    # the web API the UI reads: the failure, the reasons and error exchanges that open
    status, detail = call(app.url, ep(ENDPOINT))
    assert status == 200 and detail["failure"] and "candidate errors" in detail["failure"]
    assert detail["candidate_errors"]["kinds"] == {kind: N}
    assert detail["candidate_errors"]["reasons"]
    opened = detail["candidate_errors"]["exchanges"][0]
    status, exchange = call(app.url, f"/api/v1/exchanges/{opened['id']}")
    assert status == 200 and exchange["responses"]["candidate"]["error"]
    status, overview = call(app.url, "/api/v1/summary?window=15m")
    [row] = overview["endpoints"]
    assert row["candidate_errors"] == N and "candidate errors" in row["failure"]

    # the metrics: diffsvc_errors_total{endpoint, kind}
    samples = scrape(app.url)
    assert samples[("diffsvc_errors_total", (("endpoint", ENDPOINT), ("kind", kind)))] == N

    # the notifier fires on the same decision
    counts = gate.window_counts(r, 5)
    [alert] = notifier.transitions(counts, set(), cfg.notify_threshold, 10, "5m", 0.0, criteria)
    assert alert.status == "firing" and "candidate errors" in alert.text


def test_replay_gate_fails_a_dead_candidate(serve, r: Redis, redis_url: str, tmp_path,
                                            capsys) -> None:
    prod = serve(production())
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps({"method": "GET", "path": f"/items/{i}"}) + "\n"
                                for i in range(N)))
    status = cli.main(["replay", str(requests), "--primary", prod.url, "--candidate",
                       f"http://127.0.0.1:{closed_port()}", "--redis-url", redis_url, "--gate"])
    err = capsys.readouterr().err
    assert status == 1, err
    assert f"replay gate: FAIL {ENDPOINT}: candidate errors {N}/{N} (connection refused) > 1%" \
        in err
