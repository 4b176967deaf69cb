"""`diffsvc replay` of a browser HAR, JSON lines and GoReplay files: the report equals the
inline gateway's for the same requests; progress bar, summary and --gate."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from diffsvc import cli, gateway
from diffsvc.demo import upstream
from diffsvc.demo.run import DEMO_IGNORE
from diffsvc.ops.replay import read
from tests.conftest import run_worker_burst
from tests.integration.demo_helpers import report_summary, wait_captured

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
IGNORE_FLAGS = [arg for f in DEMO_IGNORE["fields"] for arg in ("--ignore-field", f)]


def _inline_report(serve: Any, r: Any, make_config: Any, prod: Any, cand: Any,
                   targets: list[str]) -> dict[str, tuple[int, float, list[str]]]:
    cfg = make_config(primary=prod.url, candidate=cand.url,
                      ignore={"fields": list(DEMO_IGNORE["fields"]), "headers": []})
    gw = serve(gateway.build_app(cfg))
    for target in targets:
        with urllib.request.urlopen(gw.url + target, timeout=10) as resp:
            resp.read()
    wait_captured(r, len(targets), timeout=10)
    run_worker_burst(cfg)
    summary = report_summary(r)
    r.flushall()
    return summary


@pytest.mark.parametrize("name", ["browser-session.har", "requests.jsonl", "traffic.gor"])
def test_replay_gives_the_inline_gateways_report(name, serve, r, redis_url, make_config, capsys):
    prod = serve(upstream.build_app("prod"))
    cand = serve(upstream.build_app("candidate"))
    requests = read(FIXTURES / name)
    assert len(requests) >= 3
    expected = _inline_report(serve, r, make_config, prod, cand, [q.target for q in requests])
    capsys.readouterr()
    status = cli.main(["replay", str(FIXTURES / name), "--primary", prod.url, "--candidate",
                       cand.url, "--redis-url", redis_url, "--rate", "200", "--concurrency", "4",
                       *IGNORE_FLAGS])
    out, err = capsys.readouterr()
    assert status == 0
    assert report_summary(r) == expected
    n = len(requests)
    assert f"] {n}/{n} 100%" in err and "ETA" in err  # the progress bar, finished
    assert f"{n} sent" in err and f"{n} compared" in err
    for endpoint in expected:
        assert endpoint in out


def test_har_request_fields() -> None:
    [first, *_] = read(FIXTURES / "browser-session.har")
    assert (first.method, first.path) == ("GET", "/api/products/1")
    assert ("Host", "shop.example.test") in first.headers
    assert not any(k.lower() == "connection" for k, _ in first.headers)
    search = [q for q in read(FIXTURES / "browser-session.har") if q.path == "/api/search"]
    assert [q.query for q in search] == ["q=shoes", "q=red-hat"]
    gor = read(FIXTURES / "traffic.gor")
    assert [q.target for q in gor] == ["/api/users/5", "/api/products/6", "/api/search?q=desk"]


def test_gate_fails_on_divergence_and_passes_on_the_same_build(serve, r, redis_url, capsys):
    prod = serve(upstream.build_app("prod"))
    same = serve(upstream.build_app("prod"))
    cand = serve(upstream.build_app("candidate"))
    har = str(FIXTURES / "browser-session.har")
    # the session diverges once (one product price in 12 requests): not significant alone,
    # three replays of it are evidence enough (3 of 18 product pairs)
    args = ["replay", har, har, har, "--primary", prod.url, "--redis-url", redis_url, "--gate",
            *IGNORE_FLAGS]
    assert cli.main([*args, "--candidate", same.url]) == 0
    assert "replay gate: pass" in capsys.readouterr().err
    r.flushall()
    assert cli.main([*args, "--candidate", cand.url]) == 1
    assert "replay gate: FAIL" in capsys.readouterr().err


def test_bad_input_names_the_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"method": "GET", "path": "/a"}\n{"method": "GET", "path": 7}\n')
    assert cli.main(["replay", str(bad), "--primary", "http://127.0.0.1:9",
                     "--candidate", "http://127.0.0.1:10"]) == 65  # EX_DATAERR
    assert f"{bad}:2" in capsys.readouterr().err


def _recording(seen: list[str]) -> Any:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.method)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


SIDE_EFFECTS = ('{"method": "GET", "path": "/api/orders/1"}\n'
                '{"method": "POST", "path": "/api/orders", "body": {"qty": 1}}\n'
                '{"method": "DELETE", "path": "/api/orders/1"}\n')


@pytest.mark.parametrize("allow", [False, True])
def test_side_effects_are_sent_only_when_allowed(allow, serve, redis_url, tmp_path, capsys):
    prod_seen: list[str] = []
    cand_seen: list[str] = []
    prod, cand = serve(_recording(prod_seen)), serve(_recording(cand_seen))
    lines = tmp_path / "orders.jsonl"
    lines.write_text(SIDE_EFFECTS)
    flag = ["--allow-side-effects"] if allow else []
    assert cli.main(["replay", str(lines), "--primary", prod.url, "--candidate", cand.url,
                     "--redis-url", redis_url, *flag]) == 0
    err = capsys.readouterr().err
    expected = ["DELETE", "GET", "POST"] if allow else ["GET"]
    assert sorted(prod_seen) == sorted(cand_seen) == expected
    assert ("2 with side effects: --allow-side-effects sends them" in err) is not allow, err


def test_run_keeps_its_data_apart(serve, r, redis_url, capsys):
    prod = serve(upstream.build_app("prod"))
    cand = serve(upstream.build_app("candidate"))
    args = ["replay", str(FIXTURES / "requests.jsonl"), "--primary", prod.url, "--candidate",
            cand.url, "--redis-url", redis_url, *IGNORE_FLAGS]
    assert cli.main(args) == 0  # other traffic in the same Redis
    before = report_summary(r)
    capsys.readouterr()
    assert cli.main([*args, "--run", "nightly"]) == 0
    out = capsys.readouterr().out
    after = report_summary(r)
    assert {k: v for k, v in after.items() if not k.startswith("[nightly] ")} == before
    run = {k.removeprefix("[nightly] "): v for k, v in after.items() if k.startswith("[nightly] ")}
    assert run == before  # the same requests, counted apart
    for endpoint in before:
        assert f"[nightly] {endpoint}" in out
        assert f"\n{endpoint} " not in out  # only the run's endpoints are reported
