"""The gateway on real upstreams and a real Redis: what the client gets is primary's answer,
byte for byte, whatever the candidate or Redis do; the shadow copy is bounded and counted."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from redis import Redis

from diffsvc import gateway
from diffsvc.config import Config
from diffsvc.errors import ConfigError
from diffsvc.ops.embedded import free_port
from diffsvc.report import data
from tests.conftest import CRITERIA, ServedApp, run_worker_burst

BINARY = bytes(range(256)) * 40
GZ_BODY = gzip.compress(b'{"compressed": true, "pad": "' + b"z" * 2000 + b'"}')
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade"}


@dataclass
class Seen:
    """What an upstream received: (method, path_qs, headers, body) per request."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def methods(self) -> list[str]:
        return [m for m, *_ in self.requests]


SEEN = web.AppKey("seen", Seen)
GATE = web.AppKey("gate", asyncio.Event)


def upstream(role: str, *, hold: bool = False) -> web.Application:
    """A small service. With hold=True every request waits for app[GATE] (set by the test)."""

    async def record(request: web.Request) -> None:
        request.app[SEEN].requests.append(
            (request.method, request.path_qs, dict(request.headers), await request.read()))
        if hold:
            await request.app[GATE].wait()

    async def user(request: web.Request) -> web.Response:
        await record(request)
        uid = request.match_info["id"]
        resp = web.json_response({"id": int(uid), "role": role, "name": f"user {uid}"})
        resp.headers["X-Custom"] = "kept"
        resp.headers.add("Set-Cookie", "a=1")
        resp.headers.add("Set-Cookie", "b=2")
        resp.headers["Keep-Alive"] = "timeout=5"
        resp.headers["Proxy-Authenticate"] = "Basic"
        resp.headers["Cache-Control"] = "max-age=30"
        return resp

    async def compressed(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=GZ_BODY, headers={"Content-Encoding": "gzip",
                                                   "Content-Type": "application/json"})

    async def binary(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=BINARY, content_type="application/octet-stream")

    async def missing(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"error": "no such thing"}, status=404)

    async def post(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"created": True, "role": role}, status=201)

    app = web.Application()
    app[SEEN] = Seen()
    app[GATE] = asyncio.Event()
    app.router.add_get("/api/users/{id}", user)
    app.router.add_get("/gz", compressed)
    app.router.add_get("/bin", binary)
    app.router.add_post("/api/orders", post)
    app.router.add_route("*", "/{tail:.*}", missing)
    return app


def release(served: ServedApp) -> None:
    served.loop.call_soon_threadsafe(served.app[GATE].set)


def fetch(base: str, path: str, method: str = "GET", body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    """One raw HTTP request; the status, every header as sent (in order), the body bytes."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def upstreams(serve: Callable[[web.Application], ServedApp]) -> Iterator[
        Callable[..., tuple[ServedApp, ServedApp]]]:
    held: list[ServedApp] = []

    def _make(*, hold_candidate: bool = False) -> tuple[ServedApp, ServedApp]:
        prod = serve(upstream("prod"))
        cand = serve(upstream("candidate", hold=hold_candidate))
        if hold_candidate:
            held.append(cand)
        return prod, cand

    yield _make
    for cand in held:  # let held handlers finish so the servers stop promptly
        release(cand)


def gateway_for(serve: Callable[[web.Application], ServedApp], cfg: Config) -> ServedApp:
    return serve(gateway.build_app(cfg))


def counters(gw: ServedApp) -> dict[str, int]:
    return dict(gw.app[gateway.COUNTERS])


def _headers_without(headers: list[tuple[str, str]], drop: set[str]) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in headers if k.lower() not in drop]


@pytest.mark.parametrize("path", ["/api/users/7", "/gz", "/bin", "/nowhere"])
def test_client_gets_primary_response_byte_for_byte(serve, upstreams, make_config, r,
                                                    path: str) -> None:
    prod, cand = upstreams()
    gw = gateway_for(serve, make_config(primary=prod.url, candidate=cand.url))
    direct_status, direct_headers, direct_body = fetch(prod.url, path)
    status, headers, body = fetch(gw.url, path)
    _assert_same_response(path, (status, headers, body),
                          (direct_status, direct_headers, direct_body))


def test_head_keeps_primary_content_length(serve, upstreams, make_config, r) -> None:
    prod, cand = upstreams()
    gw = gateway_for(serve, make_config(primary=prod.url, candidate=cand.url))
    direct = fetch(prod.url, "/bin", "HEAD")
    got = fetch(gw.url, "/bin", "HEAD")
    assert got[2] == direct[2] == b""
    drop = HOP_BY_HOP | {"date"}
    assert _headers_without(got[1], drop) == _headers_without(direct[1], drop)
    assert ("content-length", str(len(BINARY))) in _headers_without(got[1], drop)


def _assert_same_response(path: str, got: tuple[int, list[tuple[str, str]], bytes],
                          direct: tuple[int, list[tuple[str, str]], bytes]) -> None:
    status, headers, body = got
    direct_status, direct_headers, direct_body = direct
    assert status == direct_status
    assert body == direct_body
    assert b'"role": "prod"' in body or path in ("/gz", "/bin") or status == 404
    # every end-to-end header of primary, in order, duplicates kept; Date may tick
    drop = HOP_BY_HOP | {"date", "content-length"}
    assert _headers_without(headers, drop) == _headers_without(direct_headers, drop)
    assert not {k.lower() for k, _ in headers} & (HOP_BY_HOP - {"connection"})
    assert dict((k.lower(), v) for k, v in headers)["content-length"] == str(len(body))


def test_gzip_body_passes_through_untouched(serve, upstreams, make_config, r) -> None:
    prod, cand = upstreams()
    gw = gateway_for(serve, make_config(primary=prod.url, candidate=cand.url))
    status, headers, body = fetch(gw.url, "/gz", headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert body == GZ_BODY  # still compressed: not decoded, not re-encoded
    assert ("Content-Encoding", "gzip") in headers
    assert gzip.decompress(body).startswith(b'{"compressed": true')


def test_binary_and_404_are_passed_and_mirrored(serve, upstreams, make_config, r) -> None:
    prod, cand = upstreams()
    gw = gateway_for(serve, make_config(primary=prod.url, candidate=cand.url))
    assert fetch(gw.url, "/bin")[2] == BINARY
    assert fetch(gw.url, "/missing/thing")[0] == 404
    wait_until(lambda: len(cand.app[SEEN].requests) == 2, "both shadow copies")


def test_candidate_gets_the_shadow_header_and_primary_does_not(serve, upstreams, make_config,
                                                               r) -> None:
    prod, cand = upstreams()
    gw = gateway_for(serve, make_config(primary=prod.url, candidate=cand.url))
    fetch(gw.url, "/api/users/1?x=1", headers={"X-Trace": "abc"})
    wait_until(lambda: cand.app[SEEN].requests, "the shadow request")
    [(_, cand_target, cand_headers, _)] = cand.app[SEEN].requests
    [(_, prod_target, prod_headers, _)] = prod.app[SEEN].requests
    assert cand_target == prod_target == "/api/users/1?x=1"
    assert cand_headers.get("X-Diffsvc-Shadow") == "1"
    assert "X-Diffsvc-Shadow" not in prod_headers
    assert cand_headers.get("X-Trace") == prod_headers.get("X-Trace") == "abc"
    assert prod_headers.get("X-Forwarded-For") == "127.0.0.1"


def test_shadow_copy_that_comes_back_is_refused(serve, upstreams, make_config, r) -> None:
    """A candidate misconfigured to point at the gateway must not loop (or reach primary)."""
    prod, cand = upstreams()
    gw = gateway_for(serve, make_config(primary=prod.url, candidate=cand.url))
    assert fetch(gw.url, "/api/users/1", headers={"X-Diffsvc-Shadow": "1"})[0] == 508
    assert counters(gw).get("refused_shadow_loop") == 1
    assert cand.app[SEEN].requests == [] and prod.app[SEEN].requests == []


def test_post_reaches_primary_but_not_candidate_by_default(serve, upstreams, make_config,
                                                           r) -> None:
    prod, cand = upstreams()
    gw = gateway_for(serve, make_config(primary=prod.url, candidate=cand.url))
    status, _, body = fetch(gw.url, "/api/orders", "POST", b'{"sku": "x"}',
                            {"Content-Type": "application/json"})
    assert (status, body) == (201, b'{"created": true, "role": "prod"}')
    assert prod.app[SEEN].requests[0][0::3] == ("POST", b'{"sku": "x"}')
    assert counters(gw).get("skipped_method") == 1
    # a later GET is mirrored; by the time it arrives, the POST would have too
    fetch(gw.url, "/api/users/3")
    wait_until(lambda: cand.app[SEEN].requests, "the mirrored GET")
    assert cand.app[SEEN].methods() == ["GET"]


def test_post_is_mirrored_with_allow_side_effects(serve, upstreams, make_config, r) -> None:
    prod, cand = upstreams()
    gw = gateway_for(serve, make_config(primary=prod.url, candidate=cand.url,
                                        allow_side_effects=True))
    assert fetch(gw.url, "/api/orders", "POST", b'{"sku": "y"}')[0] == 201
    wait_until(lambda: cand.app[SEEN].requests, "the mirrored POST")
    [(method, target, headers, body)] = cand.app[SEEN].requests
    assert (method, target, body) == ("POST", "/api/orders", b'{"sku": "y"}')
    assert headers["X-Diffsvc-Shadow"] == "1"


def _error_verdicts(r: Redis, cfg: Config, n: int, gw: ServedApp, prod: ServedApp) -> dict[str, Any]:
    """n requests through the gateway, each answered exactly as primary answers directly;
    then the report entry of the one endpoint once they are compared."""
    direct = fetch(prod.url, "/api/users/5")
    for _ in range(n):
        status, _, body = fetch(gw.url, "/api/users/5")
        assert (status, body) == (direct[0], direct[2])
    wait_until(lambda: counters(gw).get("captured", 0) >= n, f"{n} captured exchanges")
    run_worker_burst(cfg)
    [entry] = data.build(r, CRITERIA).to_dict()["endpoints"]
    return entry


def test_dead_candidate_changes_nothing_for_the_client(serve, upstreams, make_config, r) -> None:
    prod, _ = upstreams()
    cfg = make_config(primary=prod.url, candidate=f"http://127.0.0.1:{free_port()}")
    gw = gateway_for(serve, cfg)
    entry = _error_verdicts(r, cfg, 5, gw, prod)
    assert (entry["endpoint"], entry["pairs"], entry["errors"], entry["mismatches"]) == \
        ("GET /api/users/{id}", 5, 5, 0)
    assert counters(gw)["shadow_error"] == 5


def test_hanging_candidate_changes_nothing_for_the_client(serve, upstreams, make_config,
                                                          r) -> None:
    prod, cand = upstreams(hold_candidate=True)  # the candidate never answers
    cfg = make_config(primary=prod.url, candidate=cand.url, shadow_timeout=0.3)
    gw = gateway_for(serve, cfg)
    entry = _error_verdicts(r, cfg, 3, gw, prod)
    assert (entry["pairs"], entry["errors"], entry["matches"]) == (3, 3, 0)
    assert len(cand.app[SEEN].requests) == 3


def test_dead_redis_gives_no_client_errors_and_counts_capture_failed(serve, upstreams,
                                                                     make_config) -> None:
    prod, cand = upstreams()
    cfg = make_config(primary=prod.url, candidate=cand.url,
                      redis_url=f"redis://127.0.0.1:{free_port()}/0")
    gw = gateway_for(serve, cfg)
    for uid in range(10):
        status, _, body = fetch(gw.url, f"/api/users/{uid}")
        assert status == 200 and b'"role": "prod"' in body
    wait_until(lambda: counters(gw).get("capture_failed", 0) >= 10, "capture_failed == 10")
    got = counters(gw)
    assert got["capture_failed"] == 10
    assert got.get("captured", 0) == 0
    assert got["requests"] == 10 and got.get("primary_errors", 0) == 0


def test_max_inflight_drops_and_counts(serve, upstreams, make_config, r) -> None:
    prod, cand = upstreams(hold_candidate=True)  # the first shadow stays in flight
    cfg = make_config(primary=prod.url, candidate=cand.url, max_inflight=1, shadow_timeout=30.0)
    gw = gateway_for(serve, cfg)
    for _ in range(5):
        assert fetch(gw.url, "/api/users/9")[0] == 200
    wait_until(lambda: cand.app[SEEN].requests, "the one shadow in flight")
    got = counters(gw)
    assert got["mirrored"] == 5
    assert got["shadow_dropped"] == 4
    release(cand)
    wait_until(lambda: counters(gw).get("captured", 0) == 1, "the one exchange captured")
    assert len(cand.app[SEEN].requests) == 1


def test_dead_primary_gives_502(serve, upstreams, make_config, r) -> None:
    _, cand = upstreams()
    gw = gateway_for(serve, make_config(primary=f"http://127.0.0.1:{free_port()}",
                                        candidate=cand.url))
    status, _, body = fetch(gw.url, "/api/users/1")
    assert status == 502 and b"primary" in body
    assert counters(gw)["primary_errors"] == 1
    assert cand.app[SEEN].requests == []


def test_build_app_requires_primary_and_redis() -> None:
    with pytest.raises(ConfigError, match="'primary'"):
        gateway.build_app(Config(redis_url="redis://127.0.0.1:1/0"))
