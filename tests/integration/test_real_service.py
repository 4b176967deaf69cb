"""Diff quality tried as a new user would: three instances of a real HTTP service none of us
wrote (httpbin, from PyPI, served by werkzeug) as primary, secondary and candidate, behind
the gateway. /uuid returns a fresh id, /bytes/N random bytes, /gzip and /brotli compressed
bodies echoing the (per-instance) Host header: all noise, recognised with the secondary, so
unchanged endpoints show a 0 mismatch rate. A tiny WSGI middleware changes one JSON field
on the candidate's /json, and the report finds it with its path. httpbin runs in its own
venv (made on first use), as a child process."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from diffsvc import config
from diffsvc.report import data
from tests.conftest import CRITERIA, ServedApp, run_worker_burst
from tests.integration.test_gateway import counters, fetch, gateway_for, wait_until

ROUNDS = 8
UNCHANGED = ["/uuid", "/bytes/64", "/gzip", "/brotli", "/deflate", "/anything/orders?page=2",
             "/get", "/status/418", "/xml", "/html"]
CHANGED_PATH = "$.slideshow.author"
ROOT = Path(__file__).resolve().parents[2]
HTTPBIN = "httpbin>=0.10.4"
SERVE = Path(__file__).with_name("httpbin_serve.py")


def httpbin_python() -> str:
    """The Python of httpbin's own venv (made once, by `./dev venv`, under .cache/): httpbin
    pins greenlet<3, which contradicts playwright in the test venv."""
    env_dir = ROOT / ".cache" / f"httpbin-py{sys.version_info[0]}.{sys.version_info[1]}"
    env_dir.parent.mkdir(exist_ok=True)
    python = env_dir / "bin" / "python"
    with open(env_dir.parent / "httpbin.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs make it once
        if not (env_dir / "ready").exists():
            subprocess.run([sys.executable, str(ROOT / "dev"), "venv", str(env_dir), HTTPBIN],
                           check=True, timeout=300)
            (env_dir / "ready").touch()
    return str(python)


class Httpbin:
    """httpbin served by werkzeug in a child process of its venv's Python."""

    def __init__(self, python: str, *args: str) -> None:
        self.process = subprocess.Popen([python, str(SERVE), *args], stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://"), f"httpbin did not start (exit {self.process.poll()})"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def instances() -> Iterator[dict[str, Httpbin]]:
    python = httpbin_python()
    servers = {"primary": Httpbin(python), "secondary": Httpbin(python),
               "candidate": Httpbin(python, "--change-author")}
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
