"""diffsvc.fastclient against real HTTP servers on 127.0.0.1: aiohttp apps for the ordinary
cases, raw asyncio servers for the framing edge cases aiohttp never sends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from diffsvc.core.models import Reply, Request
from diffsvc.gateway.fastclient import Client


def _get(path: str = "/x", method: str = "GET", body: bytes = b"") -> Request:
    return Request(method, path, "a=1", [("Host", "client.example")], body)


def _app() -> web.Application:
    peers: list[int] = []

    async def echo(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        body = await request.read()
        return web.json_response({"method": request.method, "path": request.path_qs,
                                  "host": request.host, "body": body.decode(),
                                  "x": request.headers.get("X-Test"), "peers": peers},
                                 headers={"X-Multi": "1"})

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for part in (b"hello ", b"chunked ", b"world"):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_route("*", "/x", echo)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/empty", empty)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    return app


def _run(coro: Awaitable[Reply]) -> Reply:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_content_length_reply_and_keep_alive_reuse(serve) -> None:
    url = serve(_app()).url

    async def go() -> tuple[Reply, Reply]:
        client = Client()
        first = await client.call(url, _get(), [("X-Test", "yes")], 5, 10**6)
        second = await client.call(url, _get(), [], 5, 10**6)
        client.close()
        return first, second

    first, second = asyncio.run(go())
    assert first.error is None and first.status == 200
    assert first.header("X-Multi") == "1"
    import json

    a, b = json.loads(first.body), json.loads(second.body)
    assert a["path"] == "/x?a=1" and a["x"] == "yes" and a["method"] == "GET"
    assert a["host"] == url.removeprefix("http://")  # Host is the upstream's, not the client's
    assert len(set(b["peers"])) == 1, "the second call reused the kept-alive connection"


def test_post_body_is_sent_with_its_length(serve) -> None:
    url = serve(_app()).url
    reply = _run(Client().call(url, _get(method="POST", body=b"payload"), [], 5, 10**6))
    assert b'"body":"payload"' in reply.body.replace(b" ", b"")


def test_chunked_head_and_no_body_statuses(serve) -> None:
    url = serve(_app()).url

    async def go() -> list[Reply]:
        client = Client()
        return [await client.call(url, _get("/chunked"), [], 5, 10**6),
                await client.call(url, _get("/empty"), [], 5, 10**6),
                await client.call(url, _get("/big", method="HEAD"), [], 5, 10**6),
                await client.call(url, _get("/chunked"), [], 5, 10**6)]

    chunked, empty, head, again = asyncio.run(go())
    assert chunked.body == b"hello chunked world" and again.body == chunked.body
    assert (empty.status, empty.body) == (204, b"")
    assert (head.status, head.body, head.error) == (200, b"", None)


def test_body_over_the_cap_is_an_error_not_a_truncated_body(serve) -> None:
    url = serve(_app()).url
    reply = _run(Client().call(url, _get("/big"), [], 5, 1000))
    assert reply.status == 200 and reply.body == b""
    assert reply.error == "body larger than 1000 bytes"


def test_timeout_refused_and_bad_header_are_errors(serve) -> None:
    url = serve(_app()).url
    slow = _run(Client().call(url, _get("/slow"), [], 0.2, 10**6))
    assert slow.error == "timeout after 0.2s"
    refused = _run(Client().call("http://127.0.0.1:1", _get(), [], 2, 10**6))
    assert refused.error and "ConnectionRefusedError" in refused.error
    injected = _run(Client().call(url, _get(), [("X-Evil", "a\r\nX-Injected: 1")], 2, 10**6))
    assert injected.error and "line break" in injected.error
    ftp = _run(Client().call("ftp://127.0.0.1:1", _get(), [], 2, 10**6))
    assert ftp.error and "only http:// and https://" in ftp.error


Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def _raw_server(answer: Answer, port: int = 0) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(answer, "127.0.0.1", port)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def _answering(response: bytes) -> Answer:
    """A raw server's handler: reads one request head, sends `response` as it is, closes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
        writer.close()

    return answer


def _call_raw(response: bytes) -> Reply:
    """One call to a raw server that answers `response`."""

    async def go() -> Reply:
        server, url = await _raw_server(_answering(response))
        async with server:
            return await Client().call(url, _get(), [], 5, 10**6)

    return asyncio.run(go())


def test_body_delimited_by_close_and_1xx_interim_responses() -> None:
    reply = _call_raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nX-A: b\r\n\r\nuntil close")
    assert (reply.status, reply.body, reply.headers, reply.error) == (
        200, b"until close", [("X-A", "b")], None)


def test_a_kept_alive_connection_closed_by_the_upstream_is_not_reused() -> None:
    connections = 0
    ok = _answering(OK)  # answers one request, then closes without saying so

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await ok(reader, writer)

    async def go() -> list[Reply]:
        server, url = await _raw_server(answer)
        client = Client()
        async with server:
            first = await client.call(url, _get(), [], 5, 10**6)
            await asyncio.sleep(0.05)
            second = await client.call(url, _get(), [], 5, 10**6)
            await asyncio.sleep(0.05)
            post = await client.call(url, _get(method="POST", body=b"1"), [], 5, 10**6)
            return [first, second, post]

    first, second, post = asyncio.run(go())
    assert first.body == second.body == post.body == b"ok"
    assert connections == 3


def test_the_retry_after_a_stale_kept_alive_connection_is_fresh() -> None:
    """Every pooled connection went stale at once (the upstream closes each one when the next
    request arrives, before our side saw its FIN; the shadow fault test's gzip_bomb upstream
    once hit this): the one retry must use a new connection, not another stale one."""
    connections = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.2)  # both first calls are in flight: two pooled connections
        writer.write(OK)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the next request on it: closed, unanswered
        writer.close()

    async def go() -> tuple[list[Reply], Reply]:
        server, url = await _raw_server(answer)
        client = Client()
        async with server:
            first = await asyncio.gather(*(client.call(url, _get(), [], 5, 10**6)
                                           for _ in range(2)))
            return list(first), await client.call(url, _get(), [], 5, 10**6)

    first, third = asyncio.run(go())
    assert [r.body for r in first] == [b"ok", b"ok"]
    assert (third.error, third.body) == (None, b"ok")
    assert connections == 3


def test_malformed_answer_is_an_error() -> None:
    reply = _call_raw(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert reply.error and reply.error.startswith("ProtocolError: bad status line")


def test_connect_backoff_fails_fast_then_retries(serve) -> None:
    from diffsvc.ops.embedded import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"

    async def go() -> list[Reply]:
        client = Client()
        first = await client.call(url, _get(), [], 2, 10**6, backoff=1.0)
        during = await client.call(url, _get(), [], 2, 10**6, backoff=1.0)
        no_backoff = await client.call(url, _get(), [], 2, 10**6)
        served, _ = await _raw_server(_answering(OK), port)
        try:
            still_down = await client.call(url, _get(), [], 2, 10**6, backoff=1.0)
            await asyncio.sleep(1.05)
            after = await client.call(url, _get(), [], 2, 10**6, backoff=1.0)
        finally:
            served.close()
        return [first, during, no_backoff, still_down, after]

    first, during, no_backoff, still_down, after = asyncio.run(go())
    assert first.error and "ConnectionRefusedError" in first.error
    assert during.error and "retried after 1s" in during.error
    assert no_backoff.error and "retried after" not in no_backoff.error
    assert still_down.error and "retried after" in still_down.error  # within the backoff
    assert (after.error, after.body) == (None, b"ok")

