"""What the gateway lets in, and how: diffsvc is a reverse proxy in front of one primary,
never an open proxy, and nothing a client sends may cost another client an error.

- Only origin-form request targets (`/path?query`) are served. Absolute-form
  (`GET http://elsewhere/`), authority-form (`CONNECT host:443`) and asterisk-form
  (`OPTIONS *`) are refused with a 4xx: diffsvc only talks to its configured upstreams.
- A request carrying `X-Diffsvc-Shadow` is a shadow copy that came back (a candidate URL
  pointing at a gateway): it is refused (508), never sent to primary.
- Request bodies up to `mirror_max_body` are read and mirrored; a larger one is streamed to
  primary as it arrives and not mirrored (counted as `skipped_body_too_large`).
- WebSocket upgrades are proxied to primary, message by message, and not mirrored.
- Header values that are not valid UTF-8 (aiohttp keeps them as surrogate escapes) are passed
  to primary as the bytes received and stored with U+FFFD in their place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from diffsvc.gateway import upstream

log = logging.getLogger("diffsvc.gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_WS_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                           "sec-websocket-protocol", "sec-websocket-accept"})


def _refused(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=f"diffsvc: {reason}\n",
                        headers={"Connection": "close"} if status >= 500 else None)


def guard(counters_key: web.AppKey[Counter[str]]) -> Middleware:
    """Middleware: refuse every request target but origin-form, and shadow copies that came
    back; counted as `refused_target` and `refused_shadow_loop`."""

    @web.middleware
    async def only_origin_form(request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = request.raw_path
        if not raw.startswith("/"):
            request.app[counters_key]["refused_target"] += 1
            if request.method == "CONNECT":
                return _refused(405, "CONNECT refused: diffsvc is not a forward proxy")
            return _refused(400, "only origin-form request targets (/path) are served: "
                                 "diffsvc is not a forward proxy")
        if upstream.SHADOW_HEADER in request.headers:
            request.app[counters_key]["refused_shadow_loop"] += 1
            return _refused(508, f"a shadow request ({upstream.SHADOW_HEADER}) came back to the "
                                 "gateway; it is never sent to primary")
        return await handler(request)

    return only_origin_form




async def read_body(request: web.Request, cap: int) -> tuple[bytes, bool]:
    """The body, or its first part and True when it is larger than `cap` (the rest is still
    in `request.content`, to be streamed)."""
    if not request.body_exists:
        return b"", False
    length = request.content_length
    if length is not None and length <= cap:
        return await request.read(), False
    chunks: list[bytes] = []
    size = 0
    while size <= cap:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), True


async def streamed(head: bytes, request: web.Request) -> AsyncIterator[bytes]:
    """The body already read, then the rest as it arrives."""
    yield head
    async for chunk in request.content.iter_any():
        yield chunk


def is_websocket(request: web.Request) -> bool:
    return (request.headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in request.headers.get("Connection", "").lower())


def clean_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Header values with undecodable bytes (surrogate escapes) made storable: U+FFFD."""
    out = headers
    for i, (name, value) in enumerate(headers):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                if out is headers:
                    out = list(headers)
                out[i] = (name, value.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    return out


async def proxy_websocket(request: web.Request, session: aiohttp.ClientSession, base_url: str,
                          counters: Counter[str]) -> web.StreamResponse:
    """Proxy a WebSocket to primary, frame by frame, until either side closes. Not mirrored."""
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.end_to_end(list(request.headers.items())):
        if name.lower() not in _WS_HANDSHAKE and name.lower() not in ("host", "content-length"):
            headers.add(name, value)
    if request.remote:
        headers["X-Forwarded-For"] = ", ".join([*request.headers.getall("X-Forwarded-For", []),
                                                 request.remote])
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
                 if p.strip()]
    url = base_url.replace("http", "ws", 1) + request.rel_url.raw_path_qs
    try:
        upstream_ws = await session.ws_connect(url, headers=headers, protocols=protocols,
                                               autoclose=False, autoping=True)
    except aiohttp.WSServerHandshakeError as exc:
        counters["websocket_refused"] += 1
        return web.Response(status=exc.status or 502,
                            text="diffsvc: primary refused the WebSocket upgrade\n")
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        counters["primary_errors"] += 1
        log.warning("primary WebSocket failed for %s: %s", request.path, exc)
        return web.Response(status=502, text="diffsvc: primary upstream unavailable\n")
    counters["websocket"] += 1
    client_ws = web.WebSocketResponse(protocols=[upstream_ws.protocol] if upstream_ws.protocol else (),
                                      autoclose=False, autoping=True)
    await client_ws.prepare(request)

    async def pump(src: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                   dst: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
        async for msg in src:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await dst.send_str(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.CLOSE:
                break
        with contextlib.suppress(Exception):
            await dst.close(code=src.close_code or 1000)

    async with upstream_ws:
        tasks = [asyncio.create_task(pump(client_ws, upstream_ws)),
                 asyncio.create_task(pump(upstream_ws, client_ws))]
        try:
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.wait(pending, timeout=5)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return client_ws
