"""Bad input to the gateway, sent on raw sockets: served by primary (or refused with a 4xx
when diffsvc must not forward it), never a crash, and the gateway keeps capturing after it."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter

import aiohttp
import orjson
import pytest
from aiohttp import web

from diffsvc import gateway
from diffsvc.storage import store
from tests.conftest import run_worker_burst
from tests.faults.conftest import get, primary_app, raw_request, stored_exchanges, wait_for


@pytest.fixture
def stack(serve, r, make_config):
    """primary (counting hits), candidate, and the gateway in front of them."""
    hits: Counter[str] = Counter()
    prod = serve(primary_app(hits))
    cand = serve(primary_app())
    cfg = make_config(primary=prod.url, candidate=cand.url, allow_side_effects=True,
                      mirror_max_body=64 * 1024, max_header_size=4096)
    gw = serve(gateway.build_app(cfg))
    return gw, hits, cfg, gw.app[gateway.COUNTERS]


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1."), response[:200]
    return int(response.split(b" ", 2)[1])


def body_of(response: bytes) -> dict:
    return orjson.loads(response.split(b"\r\n\r\n", 1)[1])


def still_serving(gw, r, counters) -> None:
    """The gateway answers and captures as before."""
    before = counters["captured"]
    status, _ = get(gw.url, "/after")
    assert status == 200
    wait_for(lambda: counters["captured"] > before, what="capture after the bad request")


def test_malformed_http_gets_400_and_nothing_else_breaks(stack, r) -> None:
    gw, hits, _, counters = stack
    for junk in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00",
                 b"GET /\xff\xfe HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef"):
        response = raw_request(gw.url, junk, timeout=5)
        assert response == b"" or 400 <= status_of(response) < 500, response[:200]
    assert sum(hits.values()) == 0
    still_serving(gw, r, counters)


def test_oversized_headers_are_refused_cleanly(stack, r) -> None:
    gw, hits, _, counters = stack
    response = raw_request(gw.url, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 8000 +
                           b"\r\nConnection: close\r\n\r\n")
    assert 400 <= status_of(response) < 500 and sum(hits.values()) == 0
    still_serving(gw, r, counters)


def test_oversized_body_is_served_by_primary_but_not_mirrored(stack, r) -> None:
    gw, _, _, counters = stack
    body = bytes(range(256)) * 4096  # 1 MiB, over the 64 KiB mirroring cap
    for chunked in (False, True):  # an iterable body goes out chunked (no Content-Length)
        data = iter([body[:300_000], body[300_000:]]) if chunked else body
        status, answer = get(gw.url, "/upload", "POST", data)  # type: ignore[arg-type]
        assert status == 200
        assert orjson.loads(answer)["sha"] == hashlib.sha256(body).hexdigest()[:16]
    assert counters["skipped_body_too_large"] == 2 and counters["mirrored"] == 0


def test_invalid_utf8_and_not_json_are_served_stored_and_compared(stack, r) -> None:
    gw, hits, cfg, counters = stack
    response = raw_request(gw.url, b"POST /bytes HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9 \xff\r\n"
                           b"Content-Type: application/json\r\nContent-Length: 9\r\n"
                           b"Connection: close\r\n\r\n{not json")
    assert status_of(response) == 200 and body_of(response)["len"] == 9
    response = raw_request(gw.url, b"POST /bin HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                           b"Connection: close\r\n\r\n\xff\xfe\x00\x01")
    assert status_of(response) == 200 and body_of(response)["len"] == 4
    wait_for(lambda: counters["captured"] >= 2, what="both exchanges captured")
    run_worker_burst(cfg)
    stats = store.endpoint_stats(r)
    assert sum(s["pairs"] for s in stats.values()) == 2
    names = [v for ex in stored_exchanges(r) for k, v in ex.request.headers if k == "X-Name"]
    assert names == ["caf\ufffd \ufffd"]


def test_chunked_expect_continue_and_http10(stack, r) -> None:
    gw, _, _, counters = stack
    chunked = raw_request(gw.url, b"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                          b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert status_of(chunked) == 200 and body_of(chunked)["len"] == 11
    expect = raw_request(gw.url, b"POST /expect HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                         b"Expect: 100-continue\r\nConnection: close\r\n\r\nabc")
    assert expect.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")
    assert orjson.loads(expect.split(b"\r\n\r\n", 2)[2])["len"] == 3
    old = raw_request(gw.url, b"GET /old HTTP/1.0\r\n\r\n")
    assert old.startswith(b"HTTP/1.0 200") and body_of(old)["path"] == "/old"
    wait_for(lambda: counters["captured"] >= 3, what="three exchanges captured")


def test_absolute_form_connect_and_shadow_loops_are_refused(stack, r) -> None:
    gw, hits, _, counters = stack
    for request, expected in (
            (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
            (b"GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", 400),
            (b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 400),
            (b"GET /x HTTP/1.1\r\nHost: a\r\nX-Diffsvc-Shadow: 1\r\nConnection: close\r\n\r\n", 508)):
        assert status_of(raw_request(gw.url, request, timeout=5)) == expected
    assert sum(hits.values()) == 0, "a refused request reached primary"
    assert counters["refused_target"] == 3 and counters["refused_shadow_loop"] == 1
    still_serving(gw, r, counters)


def test_forwarding_headers_are_appended_and_hop_by_hop_dropped(stack) -> None:
    gw, _, _, _ = stack
    status, body = get(gw.url, "/h", headers={"X-Forwarded-For": "10.0.0.1",
                                              "Forwarded": "for=10.0.0.1",
                                              "Connection": "X-Private", "X-Private": "1"})
    answer = orjson.loads(body)
    assert status == 200 and answer["xff"] == "10.0.0.1, 127.0.0.1"
    assert answer["forwarded"].startswith("for=10.0.0.1, for=127.0.0.1;host=")


def test_candidate_equal_to_primary_is_a_config_error(make_config) -> None:
    from diffsvc.errors import ConfigError

    with pytest.raises(ConfigError, match="candidate"):
        gateway.build_app(make_config(primary="http://127.0.0.1:1", candidate="http://127.0.0.1:1"))


def test_websocket_is_proxied_to_primary_and_not_mirrored(serve, r, make_config) -> None:
    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str("echo:" + msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_echo)
    prod = serve(app)
    cand = serve(primary_app())
    gw = serve(gateway.build_app(make_config(primary=prod.url, candidate=cand.url)))

    async def talk() -> list[str]:
        async with aiohttp.ClientSession() as s, s.ws_connect(gw.url + "/ws") as ws:
            out = []
            for word in ("a", "b"):
                await ws.send_str(word)
                out.append((await ws.receive(timeout=5)).data)
            return out

    assert asyncio.run(talk()) == ["echo:a", "echo:b"]
    counters = gw.app[gateway.COUNTERS]
    assert counters["websocket"] == 1 and counters["mirrored"] == 0
