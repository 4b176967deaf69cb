"""The lean HTTP/1.1 server under the inline gateway, on raw sockets: pipelined requests are
answered in order, connections are kept alive (HTTP/1.0 too, when asked), a bad request after
good ones gets its 400 after their answers, limits give 431, idle connections are closed, and
a WebSocket upgrade primary refuses is passed back and counted."""

from __future__ import annotations

import socket
from collections import Counter

import orjson
import pytest
from aiohttp import web

from diffsvc import gateway
from diffsvc.gateway import http11, server
from diffsvc.storage import keys, store
from tests.conftest import ServedApp
from tests.faults.conftest import primary_app, raw_request, wait_for


@pytest.fixture
def stack(serve, r, make_config):
    hits: Counter[str] = Counter()
    prod = serve(primary_app(hits))
    cand = serve(primary_app())
    cfg = make_config(primary=prod.url, candidate=cand.url, allow_side_effects=True)
    gw = serve(gateway.build_app(cfg))
    return gw, hits, gw.app[gateway.COUNTERS]


def responses(data: bytes) -> list[tuple[int, bytes, dict]]:
    """Split a stream of HTTP/1.1 responses (Content-Length framed): status, head, JSON body."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        body, data = rest[:length], rest[length:]
        out.append((int(head.split(b" ", 2)[1]), head,
                    orjson.loads(body) if body.startswith(b"{") else {"text": body}))
    return out


def test_pipelined_requests_are_answered_in_order(stack) -> None:
    gw, hits, counters = stack
    burst = (b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
             b"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
             b"GET /three?x=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"3\r\nabc\r\n0\r\n\r\n"
             b"GET /four HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    got = responses(raw_request(gw.url, burst))
    assert [(status, body["path"], body["len"]) for status, _, body in got] == [
        (200, "/one", 0), (200, "/two", 5), (200, "/three", 3), (200, "/four", 0)]
    assert b"Connection: close" in got[-1][1] and b"Connection: close" not in got[0][1]
    wait_for(lambda: counters["captured"] == 4, what="the four exchanges captured")
    assert counters["requests"] == counters["mirrored"] == 4


def test_keep_alive_http11_and_http10(stack) -> None:
    gw, hits, _ = stack
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        for i in range(3):
            s.sendall(f"GET /k{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            answer = s.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200") and f'"/k{i}"'.encode() in answer
        s.sendall(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.0 200") and b"Connection: keep-alive" in answer
        s.sendall(b"GET /old2 HTTP/1.0\r\n\r\n")  # 1.0 without keep-alive: answered, closed
        answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.0 200") and b"Connection: close" in answer
        assert s.recv(65536) == b""
    assert hits["GET"] == 5


def test_bad_request_after_good_ones_is_answered_after_them(stack) -> None:
    gw, hits, _ = stack
    got = raw_request(gw.url, b"GET /fine HTTP/1.1\r\nHost: a\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
    first, second = responses(got)
    assert (first[0], first[2]["path"]) == (200, "/fine")
    assert second[0] == 400 and b"Connection: close" in second[1]
    assert hits["GET"] == 1


def test_too_many_header_fields_get_431(stack) -> None:
    gw, hits, _ = stack
    fields = b"".join(b"X-H%d: v\r\n" % i for i in range(http11.MAX_HEADERS + 1))
    got = raw_request(gw.url, b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")
    assert got.startswith(b"HTTP/1.1 431") and sum(hits.values()) == 0


def test_idle_connection_is_closed(monkeypatch) -> None:
    monkeypatch.setattr(server, "IDLE_TIMEOUT", 0.3)
    app = web.Application()

    async def answer(app: web.Application, incoming: http11.Incoming) -> http11.Response:
        return http11.text(200, "ok\n")

    app[server.HANDLER] = answer
    app[server.MAX_HEADER_SIZE] = 8190
    lean = ServedApp(app).start()
    try:
        host, port = lean.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
            assert s.recv(65536) == b""  # closed by the server once idle
    finally:
        lean.stop()


def test_websocket_upgrade_refused_by_primary_is_passed_back(serve, r, make_config) -> None:
    prod = serve(primary_app())  # answers the upgrade with a plain 200: not accepted
    cand = serve(primary_app())
    gw = serve(gateway.build_app(make_config(primary=prod.url, candidate=cand.url)))
    got = raw_request(gw.url, b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200") and b"refused the WebSocket" in got
    counters = gw.app[gateway.COUNTERS]
    assert counters["websocket_refused"] == 1 and counters["mirrored"] == 0


def test_capture_compress_stores_zstd_frames(serve, r, make_config) -> None:
    prod, cand = serve(primary_app()), serve(primary_app())
    gw = serve(gateway.build_app(make_config(primary=prod.url, candidate=cand.url,
                                             capture_compress=True)))
    assert raw_request(gw.url, b"GET /z HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                       ).startswith(b"HTTP/1.1 200")
    counters = gw.app[gateway.COUNTERS]
    wait_for(lambda: counters["captured"] == 1, what="the exchange captured")
    [key] = r.keys(keys.exchange("*"))
    raw = r.get(key)
    assert raw is not None and raw.startswith(b"DXZ\n")
    [exchange] = store.load_exchanges(r, [key.decode().rsplit(":", 1)[1]])
    assert exchange is not None and orjson.loads(exchange.primary.body)["path"] == "/z"
