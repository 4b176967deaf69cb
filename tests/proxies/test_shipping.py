"""Envoy and nginx, configured by `diffsvc proxy-config`, in front of a real primary and
shipping to the real collector (`diffsvc gateway --mode collect`): clients get primary's
bytes, primary is called once per request, and the collector gets what primary answered,
binary, gzip and chunked bodies included."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import itertools
import random
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import yaml
from aiohttp import web

from diffsvc import gateway
from diffsvc.demo import upstream as demo_upstream
from diffsvc.demo.run import DEMO_IGNORE
from diffsvc.gateway.app import COUNTERS
from diffsvc.ops.embedded import free_port
from diffsvc.ops.proxyconfig import CLUSTER, Options, render
from diffsvc.storage import keys, store
from tests.conftest import DEMO_PATHS, run_worker_burst
from tests.integration.demo_helpers import report_summary, wait_captured
from tests.proxies.conftest import INSTALL, PROXIES, available, envoy_binary

BINARY = random.Random(16).randbytes(5000)
GZIPPED = gzip.compress(orjson.dumps({"items": list(range(300))}))
CHUNKS = [b'{"parts": [', b'"a", ', b'"b"', b"]}"]
IDS = itertools.count()


class Primary:
    """A primary that records what it sent for each X-Req-Id, and how often it was called."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.sent: dict[str, bytes] = {}
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        rid = request.headers.get("X-Req-Id", "")
        self.calls[rid] += 1
        path = request.path
        headers = {"X-Primary": "1", "Server": "primary/1.0"}
        if path == "/bin":
            body = BINARY
            resp = web.Response(body=body, content_type="application/octet-stream", headers=headers)
        elif path == "/gzip":
            body = GZIPPED
            resp = web.Response(body=body, content_type="application/json",
                                headers={**headers, "Content-Encoding": "gzip"})
        elif path == "/slow-stream":  # the client goes away before the end
            stream = web.StreamResponse(headers=headers)
            await stream.prepare(request)
            await stream.write(b"first part\n")
            await asyncio.sleep(0.5)
            await stream.write(b"second part\n")
            await stream.write_eof()
            return stream
        elif path == "/chunked":
            # recorded before it is sent: the client may have read it all before write_eof
            # returns here
            self.sent[rid] = b"".join(CHUNKS)
            stream = web.StreamResponse(headers={**headers, "Content-Type": "application/json"})
            stream.enable_chunked_encoding()
            await stream.prepare(request)
            for chunk in CHUNKS:
                await stream.write(chunk)
            await stream.write_eof()
            return stream
        else:
            body = orjson.dumps({"path": path, "method": request.method,
                                 "body": (await request.read()).decode("latin-1")})
            resp = web.Response(body=body, content_type="application/json", headers=headers)
        self.sent[rid] = body
        return resp


def fetch(base: str, path: str, method: str = "GET", body: bytes | None = None
          ) -> tuple[str, int, dict[str, str], bytes]:
    """(request id, status, headers, raw body bytes): no decompression, one connection."""
    rid = f"r{next(IDS)}"
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request(method, path, body=body, headers={"X-Req-Id": rid})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return rid, resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def stored_primary_bodies(r: Any) -> dict[str, bytes]:
    """X-Req-Id -> primary's body, of every exchange the collector captured."""
    ids = [k.decode().rpartition(":")[2] for k in r.scan_iter(keys.exchange("*"), count=1000)]
    return {ex.request.header_value("X-Req-Id") or "": ex.primary.body
            for ex in store.load_exchanges(r, ids) if ex}


def eventually(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture(params=PROXIES)
def proxy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_clients_get_primary_bytes_and_collector_gets_them_too(proxy, proxy_front, serve, r,
                                                               make_config) -> None:
    primary, candidate = Primary(), Primary()
    prim = serve(primary.app)
    collector = serve(gateway.build_app(make_config(candidate=serve(candidate.app).url,
                                                    mode="collect", collect_token="t0k")))
    front = proxy_front(proxy, prim.url, collector.url, token="t0k")
    paths = ["/bin", "/gzip", "/chunked", "/json/1", "/json/2?q=%C3%A9"] * 2
    seen = [fetch(front, path) for path in paths]
    for rid, status, headers, body in seen:
        assert status == 200 and body == primary.sent[rid], rid
        assert headers["x-primary"] == "1" and headers["server"] == "primary/1.0"
        assert "x-envoy-upstream-service-time" not in headers and "x-request-id" not in headers
    assert set(primary.calls.values()) == {1} and len(primary.calls) == len(paths)
    wait_captured(r, len(paths))
    assert stored_primary_bodies(r) == {rid: primary.sent[rid] for rid, *_ in seen}
    counters = collector.app[COUNTERS]
    assert counters["mirrored"] == len(paths) and not counters["collect_invalid"]
    assert sum(candidate.calls.values()) == len(paths)


def test_report_equals_inline_gateway_report(proxy, proxy_front, serve, r, make_config) -> None:
    prod = serve(demo_upstream.build_app("prod"))
    cand = serve(demo_upstream.build_app("candidate"))
    ignore = {"fields": list(DEMO_IGNORE["fields"]), "headers": []}
    inline_cfg = make_config(primary=prod.url, candidate=cand.url, ignore=ignore)
    gw = serve(gateway.build_app(inline_cfg))
    for path in DEMO_PATHS:
        fetch(gw.url, path)
    wait_captured(r, len(DEMO_PATHS))
    run_worker_burst(inline_cfg)
    inline = report_summary(r)
    assert any(rate > 0 for _, rate, _ in inline.values())
    r.flushall()

    collect_cfg = make_config(primary=prod.url, candidate=cand.url, ignore=ignore,
                              mode="collect")
    collector = serve(gateway.build_app(collect_cfg))
    front = proxy_front(proxy, prod.url, collector.url)
    for path in DEMO_PATHS:
        assert fetch(front, path)[1] == 200
    wait_captured(r, len(DEMO_PATHS))
    run_worker_burst(collect_cfg)
    assert report_summary(r) == inline


def test_dead_collector_leaves_clients_unaffected(proxy, proxy_front, serve) -> None:
    primary = Primary()
    prim = serve(primary.app)
    front = proxy_front(proxy, prim.url, f"http://127.0.0.1:{free_port()}")
    for path in ["/bin", "/gzip", "/chunked", "/json/1"] * 5:
        rid, status, _, body = fetch(front, path)
        assert status == 200 and body == primary.sent[rid]
    assert set(primary.calls.values()) == {1}


def test_post_mirrored_only_when_allowed(proxy, proxy_front, serve, make_config) -> None:
    primary = Primary()
    prim = serve(primary.app)
    cand = serve(Primary().app)
    strict = serve(gateway.build_app(make_config(candidate=cand.url, mode="collect")))
    allowing = serve(gateway.build_app(make_config(candidate=cand.url, mode="collect",
                                                   allow=["POST /search"])))
    for collector in (strict, allowing):
        front = proxy_front(proxy, prim.url, collector.url)
        rid, status, _, body = fetch(front, "/search", "POST", b'{"q": "shoes"}')
        assert status == 200 and body == primary.sent[rid] and primary.calls[rid] == 1
    eventually(lambda: strict.app[COUNTERS]["skipped_method"] == 1, "POST not skipped")
    eventually(lambda: allowing.app[COUNTERS]["mirrored"] == 1, "allowed POST not mirrored")
    assert strict.app[COUNTERS]["mirrored"] == 0


def test_primary_down_is_not_shipped(proxy, proxy_front, serve, make_config) -> None:
    cand = serve(Primary().app)
    collector = serve(gateway.build_app(make_config(candidate=cand.url, mode="collect")))
    front = proxy_front(proxy, f"http://127.0.0.1:{free_port()}", collector.url)
    assert fetch(front, "/json/1")[1] in (502, 503)
    primary = Primary()  # a later, live request is shipped: the dead one was filtered
    front = proxy_front(proxy, serve(primary.app).url, collector.url)
    assert fetch(front, "/json/2")[1] == 200
    eventually(lambda: collector.app[COUNTERS]["requests"] >= 1, "nothing shipped")
    time.sleep(0.3)
    assert collector.app[COUNTERS]["requests"] == 1


def test_envoy_validates_the_compose_config() -> None:
    """docker/envoy.yaml (hostnames: STRICT_DNS clusters) is accepted by Envoy itself."""
    if not available("envoy"):
        pytest.skip(f"envoy is not installed ({INSTALL['envoy']})")
    conf = Path(__file__).resolve().parents[2] / "docker" / "envoy.yaml"
    out = subprocess.run([str(envoy_binary()), "--mode", "validate", "-c", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "OK" in out.stdout + out.stderr, out.stderr[-2000:]


def test_istio_filter_ships_from_a_real_envoy(proxy_front, serve, make_config) -> None:
    """The EnvoyFilter's Lua, in Envoy with the collector cluster named as Istio names a
    Service's outbound cluster: it ships, and leaves the router's headers as Istio does."""
    primary = Primary()
    prim = serve(primary.app)
    collector = serve(gateway.build_app(make_config(candidate=serve(Primary().app).url,
                                                    mode="collect")))
    filter_doc = yaml.safe_load(render(Options("istio", collector.url, selector="app=shop")))
    [patch] = filter_doc["spec"]["configPatches"]
    istio_lua = patch["patch"]["value"]["typed_config"]["default_source_code"]["inline_string"]
    port = urlsplit(collector.url).port

    def as_istio(text: str) -> str:
        doc = yaml.safe_load(text)
        hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        hcm["typed_config"]["http_filters"][0]["typed_config"]["default_source_code"] = {
            "inline_string": istio_lua}
        [cluster] = [c for c in doc["static_resources"]["clusters"] if c["name"] == CLUSTER]
        cluster["name"] = cluster["load_assignment"]["cluster_name"] = \
            f"outbound|{port}||127.0.0.1"
        return yaml.safe_dump(doc)

    front = proxy_front("envoy", prim.url, collector.url, edit=as_istio)
    rid, status, headers, body = fetch(front, "/json/9")
    assert status == 200 and body == primary.sent[rid]
    assert "x-envoy-upstream-service-time" in headers  # Istio's sidecars keep it
    eventually(lambda: collector.app[COUNTERS]["mirrored"] == 1, "nothing shipped")


def test_bodies_over_the_caps_reach_clients_and_are_counted(proxy, proxy_front, serve,
                                                            make_config) -> None:
    primary = Primary()
    prim = serve(primary.app)
    collector = serve(gateway.build_app(make_config(
        candidate=serve(Primary().app).url, mode="collect", allow=["POST /upload"])))
    front = proxy_front(proxy, prim.url, collector.url, max_request_body=1024,
                        max_response_body=1024)
    big_request = fetch(front, "/upload", "POST", BINARY)  # spooled to a file by nginx
    big_response = fetch(front, "/bin")
    small = fetch(front, "/upload", "POST", b"x" * 100)
    for rid, status, _, body in (big_request, big_response):
        assert status == 200 and body == primary.sent[rid]
    assert orjson.loads(big_request[3])["body"] == BINARY.decode("latin-1")
    assert small[1] == 200
    counters = collector.app[COUNTERS]
    eventually(lambda: counters["requests"] == 3, f"not all shipped: {counters}")
    assert counters["skipped_body_too_large"] == 2 and counters["mirrored"] == 1


def test_a_response_the_client_did_not_wait_for_is_not_shipped(proxy, proxy_front, serve,
                                                                make_config) -> None:
    primary = Primary()
    collector = serve(gateway.build_app(make_config(candidate=serve(Primary().app).url,
                                                    mode="collect")))
    front = proxy_front(proxy, serve(primary.app).url, collector.url)
    url = urlsplit(front)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(b"GET /slow-stream HTTP/1.1\r\nHost: shop\r\n\r\n")
        got = b""
        while b"first part" not in got:  # headers and the first chunk, then hang up
            data = sock.recv(4096)
            assert data, got
            got += data
    time.sleep(1.0)  # primary finishes; the proxy's log phase runs
    assert fetch(front, "/json/1")[1] == 200
    eventually(lambda: collector.app[COUNTERS]["requests"] >= 1, "nothing shipped")
    time.sleep(0.3)
    assert collector.app[COUNTERS]["requests"] == 1
