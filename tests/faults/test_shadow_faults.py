"""Faults on the shadow side: whatever the candidate (or secondary) does, every client gets
primary's answer with no added error, and each exchange is stored with the shadow's error and
counted as an error verdict, never as a mismatch."""

from __future__ import annotations

import gzip
import socket
import struct
import time
from collections.abc import Callable

import orjson
import pytest

from diffsvc import gateway
from diffsvc.ops.embedded import free_port
from diffsvc.storage import store
from tests.conftest import run_worker_burst
from tests.faults.conftest import get, primary_app, read_head, stored_exchanges, wait_for

N = 12
MAX_BODY = 64 * 1024


def hang(sock: socket.socket) -> None:
    read_head(sock)
    time.sleep(4)


def slow(sock: socket.socket) -> None:
    read_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{")
    for _ in range(8):
        time.sleep(0.5)
        sock.sendall(b" ")


def reset_mid_body(sock: socket.socket) -> None:
    read_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                 b'{"method": "GET", "pa')
    time.sleep(0.05)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
    sock.close()


def garbage(sock: socket.socket) -> None:
    read_head(sock)
    sock.sendall(b"\x00\x13\x37 this is not HTTP at all \xff\xfe\r\n\r\n\x00")
    sock.close()


def huge_body(sock: socket.socket) -> None:
    read_head(sock)
    size = MAX_BODY * 16
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % size)
    chunk = b"x" * 65536
    for _ in range(size // len(chunk)):
        sock.sendall(chunk)


BOMB = gzip.compress(b"[" + b"0," * (20 * 1024 * 1024) + b"0]", 9)


def gzip_bomb(sock: socket.socket) -> None:
    read_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(BOMB) + BOMB)


FAULTS: dict[str, Callable[[socket.socket], None] | None] = {
    "refusing": None, "hanging": hang, "slow": slow, "reset_mid_body": reset_mid_body,
    "garbage": garbage, "huge_body": huge_body, "gzip_bomb": gzip_bomb,
}


# every fault on the candidate; on the secondary, those that take no waiting (same code path)
CASES = [(f, "candidate") for f in FAULTS] + [
    (f, "secondary") for f in FAULTS if f not in ("hanging", "slow", "huge_body")]


@pytest.mark.parametrize(("fault", "side"), CASES)
def test_shadow_fault_never_reaches_the_client(fault: str, side: str, serve, raw_server, r,
                                               make_config) -> None:
    prod = serve(primary_app())
    handler = FAULTS[fault]
    bad_url = raw_server(handler).url if handler else f"http://127.0.0.1:{free_port()}"
    good = serve(primary_app()).url
    urls = {"candidate": bad_url, "secondary": None} if side == "candidate" else \
        {"candidate": good, "secondary": bad_url}
    # the shadow timeout is what the hanging and slow faults are about; for the others a
    # tight one only makes the test a race with the machine's load (a gzip_bomb candidate once
    # timed out instead of failing on its size)
    timeout = 1.0 if fault in ("hanging", "slow") else 10.0
    cfg = make_config(primary=prod.url, shadow_timeout=timeout, max_body=MAX_BODY, **urls)
    gw = serve(gateway.build_app(cfg))

    client_errors = 0
    for i in range(N):
        status, body = get(gw.url, f"/api/items/{i}")
        answer = orjson.loads(body) if status == 200 else None
        if answer is None or answer["path"] != f"/api/items/{i}":
            client_errors += 1
    assert client_errors == 0

    wait_for(lambda: store.gateway_counters(r).get("captured", 0) >= N, what=f"{N} captured")
    run_worker_burst(cfg)
    [stats] = store.endpoint_stats(r).values()
    if side == "candidate":
        assert (stats["pairs"], stats["errors"], stats["mismatches"]) == (N, N, 0), stats
    else:  # secondary's failure is recorded; the candidate pair itself compares as usual
        assert stats["pairs"] == N and stats["errors"] == 0, stats
    exchanges = stored_exchanges(r)
    assert len(exchanges) == N
    for ex in exchanges:
        shadow = ex.candidate if side == "candidate" else ex.secondary
        assert shadow is not None
        if fault == "gzip_bomb":  # the call succeeded; decoding it is what fails, capped
            comparison = store.load_comparison(r, ex.id)
            if side == "candidate":
                assert comparison is not None and "exceeds" in (comparison.error or "")
        else:
            assert shadow.error, f"{fault}: no error stored on the {side} reply"
