"""Acceptance: a real service upgraded between two released versions, compared through the
real gateway, Redis and workers (burst mode).

The service is pypiserver (a PyPI-compatible package index, maintained, on PyPI): two
instances of 2.1.1 are primary and secondary, one of 2.4.2 the candidate, each from its
own virtualenv (see `realservice`). A crawl of 38 distinct URLs: the welcome page, the
simple index and each project's page (HTML), the package listing, each project's JSON,
downloads, redirects (301, 303), 404 pages, an upload of a file that exists and an XML-RPC
call with a malformed body.

The ground truth below was established by hand from the two releases' code and their
changelog (CHANGES.rst): 2.2.0 "Updated HTML formatting (#580)" gave the simple, project
and package pages `<html lang="en">` and two `<meta>` tags (re-indented: not a difference);
2.4.1 "Fix compatibility with twine 1.7.0 (#662)" answers an upload of an existing file
by twine with 400 instead of 409; 2.4.2 parses XML-RPC bodies with defusedxml and answers
a malformed one with 400 instead of a 500 (3.0.0 "harden /RPC2 XML parser (#685)"); the
welcome page states the version. Everything else (JSON, redirects, downloads, 404 pages)
is the same; their absolute URLs are built from the Host and X-Forwarded-Host each
instance is sent."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from redis import Redis

from diffsvc import config
from diffsvc.report import data
from tests.conftest import CRITERIA, ServedApp, run_worker_burst
from tests.integration import realservice
from tests.integration.test_gateway import counters, fetch, gateway_for, wait_until

OLD, NEW = "2.1.1", "2.4.2"
ROUNDS = 4  # each URL crawled four times: enough evidence for a regression at 95 % (2 of 2
#            pairs is not), and production repeats to learn its volatility from
ROUTES = [{"match": "GET /simple/{project}/"}, {"match": "GET /{project}/json"},
          {"match": "GET /packages/{file}"}]
UPGRADED_PAGE = {("$.html[*]['@lang']", "added"), ("$.html[*].head[*].meta", "added")}
ERROR_PAGE = {("status", "changed"), ("$.html[*].head[*].title[*]['#text']", "changed"),
              ("$.html[*].body[*].h1[*]['#text']", "changed")}
# endpoint -> the (path, kind) differences 2.4.2 really has, as established by hand
GROUND_TRUTH: dict[str, set[tuple[str, str]]] = {
    "GET /": {("$.html[*].body[*].p[*]['#text']", "changed")},  # "running version 2.4.2"
    "GET /simple/": UPGRADED_PAGE,
    "GET /simple/{project}/": UPGRADED_PAGE,
    "GET /packages/": UPGRADED_PAGE,
    "POST /": ERROR_PAGE,          # upload of an existing file by twine: 409 -> 400
    # malformed XML-RPC body: 500 -> 400, and the message says why
    "POST /RPC2": ERROR_PAGE | {("$.html[*].body[*].pre[*]['#text']", "changed")},
}


def crawl(packages: list[str]) -> list[tuple[str, str, bytes | None, dict[str, str]]]:
    """(method, target, body, headers) of the crawl: what a user and pip do."""
    projects = sorted({p.replace("_", "-").replace(".", "-").lower()
                       for p in realservice.PROJECTS})
    get: list[str] = ["/", "/simple/", "/packages/", "/health", "/favicon.ico"]
    get += [f"/simple/{p}/" for p in projects] + [f"/{p}/json" for p in projects]
    get += ["/simple/Gamma-Lib/", "/Gamma_Lib/json", "/epsilon.core/json", "/simple",
            "/packages", "/alpha", "/nosuch/json", "/simple/nosuch/"]
    get += [f"/packages/{name}" for name in packages[:3]]
    requests: list[tuple[str, str, bytes | None, dict[str, str]]] = [
        ("GET", target, None, {"Accept-Encoding": "identity"}) for target in get]
    boundary = uuid.uuid4().hex
    upload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\n"
              f"file_upload\r\n--{boundary}\r\nContent-Disposition: form-data; "
              f"name=\"content\"; filename=\"{packages[0]}\"\r\nContent-Type: "
              f"application/octet-stream\r\n\r\nexisting\r\n--{boundary}--\r\n").encode()
    requests.append(("POST", "/", upload, {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "User-Agent": "twine/6.1.0 CPython/3.11"}))
    requests.append(("POST", "/RPC2", b"<?xml version='1.0'?><methodCall><methodName>search",
                     {"Content-Type": "text/xml"}))
    return requests


@pytest.fixture(scope="module")
def pypiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[dict[str, realservice.Instance], list[str]]]:
    root = tmp_path_factory.mktemp("packages")
    files = realservice.package_files(root)
    started: dict[str, realservice.Instance] = {}
    try:
        for role, version in (("primary", OLD), ("secondary", OLD), ("candidate", NEW)):
            started[role] = realservice.Instance(version, root)
        yield started, files
    finally:
        for inst in started.values():
            inst.stop()


def run(serve: Callable[[web.Application], ServedApp], redis_url: str, r: Redis,
        urls: dict[str, str], requests: list[tuple[str, str, bytes | None, dict[str, str]]],
        routes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Flush, crawl ROUNDS times through a gateway, compare (burst), report per endpoint."""
    r.flushall()
    cfg = config.load(overrides={"redis_url": redis_url, "flush_interval": "10ms",
                                 "allow_side_effects": True, "routes": routes, **urls})
    gw = gateway_for(serve, cfg)
    for _ in range(ROUNDS):
        for method, target, body, headers in requests:
            status, _, _ = fetch(gw.url, target, method, body, headers)
            assert status < 500 or target == "/RPC2", (method, target, status)
    total = ROUNDS * len(requests)
    wait_until(lambda: counters(gw).get("captured", 0) >= total, f"{total} captured", 60)
    run_worker_burst(cfg)
    report = {e["endpoint"]: e for e in data.build(r, CRITERIA).to_dict()["endpoints"]}
    assert sum(e["pairs"] for e in report.values()) == total
    assert all(e["errors"] == 0 for e in report.values()), report
    return report


def reported(report: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Endpoint -> the paths diffsvc reports as real differences (with a secondary: the
    fields not explained by noise)."""
    out = {}
    for name, e in report.items():
        paths = {f["path"] for f in e["fields"] if f.get("regression", True)}
        if e["mismatches"] and paths:
            out[name] = paths
    return out


def score(report: dict[str, dict[str, Any]]) -> tuple[float, float, set[tuple[str, str]]]:
    """(false-positive rate, recall, false positives): false positives are reported
    (endpoint, path) pairs that are not in the ground truth, over all reported pairs;
    recall is the share of ground-truth (endpoint, path) pairs reported."""
    found = {(name, p) for name, paths in reported(report).items() for p in paths}
    truth = {(name, p) for name, diffs in GROUND_TRUTH.items() for p, _ in diffs}
    false = found - truth
    return (len(false) / len(found) if found else 0.0, len(found & truth) / len(truth), false)


def kinds(report: dict[str, dict[str, Any]], endpoint: str) -> set[tuple[str, str]]:
    return {(d["path"], d["kind"]) for g in report[endpoint]["groups"] for d in g["signature"]}


def test_upgrade_is_judged_right_with_and_without_a_secondary(
        serve, redis_url: str, r: Redis, pypiserver, capsys) -> None:
    instances, files = pypiserver
    requests = crawl(files)
    assert len({target for _, target, _, _ in requests}) >= 30
    urls = {role: inst.url for role, inst in instances.items()}

    # 1. with a secondary: noise measured, no rule written by hand
    with_secondary = run(serve, redis_url, r, urls, requests, ROUTES)
    fp_rate, recall, false = score(with_secondary)
    assert false == set() and recall == 1.0, (false, reported(with_secondary))
    for endpoint, truth in GROUND_TRUTH.items():
        assert kinds(with_secondary, endpoint) == truth, endpoint  # every path, its kind
    unchanged = set(with_secondary) - set(GROUND_TRUTH)
    assert len(unchanged) >= 7 and all(with_secondary[e]["mismatch_rate"] == 0.0
                                        for e in unchanged)
    figures = [f"with secondary: false-positive rate {fp_rate:.2f}, recall {recall:.2f}"]

    # 2. without a secondary: what `rules suggest` proposes is applied, then compared again
    alone = {k: v for k, v in urls.items() if k != "secondary"}
    first = run(serve, redis_url, r, alone, requests, ROUTES)
    before, recall_before, _ = score(first)
    done = subprocess.run([sys.executable, "-m", "diffsvc", "rules", "suggest",
                           "--redis-url", redis_url], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    suggested = (yaml.safe_load(done.stdout) or {}).get("routes", [])
    suggested_paths = {p for route in suggested for p in route["ignore"].get("fields", [])}
    truth_paths = {p for diffs in GROUND_TRUTH.values() for p, _ in diffs}
    assert not suggested_paths & truth_paths, suggested  # no real change is called noise
    after = run(serve, redis_url, r, alone, requests, ROUTES + suggested)
    fp_rate, recall, false = score(after)
    assert false == set() and recall == 1.0, (false, reported(after))
    figures.append(f"without secondary, before suggestions: false-positive rate {before:.2f}, "
                   f"recall {recall_before:.2f}; {len(suggested)} suggested rules applied: "
                   f"false-positive rate {fp_rate:.2f}, recall {recall:.2f}")
    with capsys.disabled():
        print("\n" + "\n".join(figures))


def test_fixture_venvs_are_cached_by_version(pypiserver) -> None:
    for version in (OLD, NEW):
        home = realservice.venv(version)
        assert home == realservice.CACHE / f"pypiserver-{version}"
        assert (home / ".installed").read_text() == version
        assert Path(home / "bin" / "pypi-server").exists()
