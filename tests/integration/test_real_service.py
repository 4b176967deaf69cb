"""Diff quality tried as a new user would: three instances of a real HTTP service none of us
wrote (httpbin, from PyPI, served by werkzeug) as primary, secondary and candidate, behind
the gateway. /uuid returns a fresh id, /bytes/N random bytes, /gzip and /brotli compressed
bodies echoing the (per-instance) Host header: all noise, recognised with the secondary, so
unchanged endpoints show a 0 mismatch rate. A tiny WSGI middleware changes one JSON field
on the candidate's /json, and the report finds it with its path."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpbin  # the `realservice` extra (.ci/run installs it with --no-deps)
import pytest
from redis import Redis
from werkzeug import serving

from diffsvc import config
from diffsvc.report import data
from tests.conftest import CRITERIA, ServedApp, run_worker_burst
from tests.integration.test_gateway import counters, fetch, gateway_for, wait_until

ROUNDS = 8
UNCHANGED = ["/uuid", "/bytes/64", "/gzip", "/brotli", "/deflate", "/anything/orders?page=2",
             "/get", "/status/418", "/xml", "/html"]
CHANGED_PATH = "$.slideshow.author"

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def change_author(app: Wsgi) -> Wsgi:
    """The candidate build's 'bug': /json names another author."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/json":
            return app(environ, start_response)
        captured: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        doc = json.loads(b"".join(app(environ, keep)))
        doc["slideshow"]["author"] = "Somebody Else"
        body = json.dumps(doc).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], headers + [("Content-Length", str(len(body)))])
        return [body]

    return middleware


class WsgiServer:
    def __init__(self, app: Wsgi) -> None:
        self.server = serving.make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


@pytest.fixture
def instances() -> Iterator[dict[str, WsgiServer]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    servers = {"primary": WsgiServer(httpbin.app), "secondary": WsgiServer(httpbin.app),
               "candidate": WsgiServer(change_author(httpbin.app))}
    yield servers
    for s in servers.values():
        s.stop()


def drive(serve: Callable[..., ServedApp], cfg: config.Config, paths: list[str]) -> None:
    gw = gateway_for(serve, cfg)
    for _ in range(ROUNDS):
        for path in paths:
            status, _, _ = fetch(gw.url, path, headers={"Accept-Encoding": "identity"})
            assert status in (200, 418), path
    total = ROUNDS * len(paths)
    wait_until(lambda: counters(gw).get("captured", 0) >= total, f"{total} captured", 30)
    run_worker_burst(cfg)


def by_endpoint(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["endpoint"]: e for e in report["endpoints"]}


def test_noise_is_recognised_and_a_change_is_found(serve, instances, redis_url: str,
                                                   r: Redis) -> None:
    cfg = config.load(overrides={"redis_url": redis_url, "flush_interval": "10ms",
                                 "primary": instances["primary"].url,
                                 "secondary": instances["secondary"].url,
                                 "candidate": instances["candidate"].url})
    drive(serve, cfg, [*UNCHANGED, "/json"])
    report = by_endpoint(data.build(r, CRITERIA).to_dict())
    noisy = 0
    for path in UNCHANGED:
        name = "GET " + path.split("?")[0].replace("/64", "/{id}").replace("/418", "/{id}")
        entry = report[name]
        assert entry["pairs"] == ROUNDS and entry["errors"] == 0, entry
        assert entry["mismatch_rate"] == 0.0, (name, entry)
        assert entry["noise"]["pairs"] == ROUNDS
        noisy += entry["raw"]["mismatches"] > 0
    # the volatile endpoints really did differ: the secondary is what explained them
    assert report["GET /uuid"]["raw"]["mismatch_rate"] == 1.0
    assert report["GET /bytes/{id}"]["raw"]["mismatch_rate"] == 1.0
    assert noisy >= 5
    changed = report["GET /json"]
    assert changed["mismatch_rate"] == 1.0
    regressions = [f["path"] for f in changed["fields"] if f["regression"]]
    assert regressions == [CHANGED_PATH]
    [group] = changed["groups"]
    assert group["signature"] == [{"path": CHANGED_PATH, "kind": "changed"}]
    assert group["count"] == ROUNDS and group["samples"]


def test_without_secondary_rules_suggest_finds_the_volatile_fields(
        serve, instances, redis_url: str, r: Redis) -> None:
    cfg = config.load(overrides={"redis_url": redis_url, "flush_interval": "10ms",
                                 "primary": instances["primary"].url,
                                 "candidate": instances["secondary"].url})
    drive(serve, cfg, ["/uuid"])
    entry = by_endpoint(data.build(r, CRITERIA).to_dict())["GET /uuid"]
    # no secondary, but production answered the same request (GET /uuid) differently on
    # every repeat: that learned volatility is the baseline, so $.uuid is noise
    assert entry["raw"]["mismatch_rate"] == 1.0 and entry["mismatch_rate"] == 0.0
    [field] = entry["fields"]
    assert (field["classification"], field["baseline"]) == ("noise", "production")
    [suspect] = entry["suspected_noise"]
    assert (suspect["path"], suspect["reason"]) == ("$.uuid", "uuid")
    assert suspect["evidence"].startswith("production answered the same request differently")
    done = subprocess.run([sys.executable, "-m", "diffsvc", "rules", "suggest",
                           "--redis-url", redis_url], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    import yaml

    suggested = yaml.safe_load(done.stdout)
    assert suggested == {"routes": [{"match": "GET /uuid", "ignore": {"fields": ["$.uuid"]}}]}
    # pasting the suggestion gives a 0 mismatch rate
    r.flushall()
    cfg2 = config.load(overrides={"redis_url": redis_url, "flush_interval": "10ms",
                                  "primary": instances["primary"].url,
                                  "candidate": instances["secondary"].url,
                                  "routes": suggested["routes"]})
    drive(serve, cfg2, ["/uuid"])
    assert by_endpoint(data.build(r, CRITERIA).to_dict())["GET /uuid"]["mismatch_rate"] == 0.0
