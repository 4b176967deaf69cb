"""What the gateway lets in, and how: diffsvc is a reverse proxy in front of one primary,
never an open proxy, and nothing a client sends may cost another client an error.

- Only origin-form request targets (`/path?query`) are served. Absolute-form
  (`GET http://elsewhere/`), authority-form (`CONNECT host:443`) and asterisk-form
  (`OPTIONS *`) are refused with a 4xx: diffsvc only talks to its configured upstreams.
- A request carrying `X-Diffsvc-Shadow` is a shadow copy that came back (a candidate URL
  pointing at a gateway): it is refused (508), never sent to primary.
- Request bodies up to `mirror_max_body` are read and mirrored; a larger one is streamed to
  primary as it arrives and not mirrored (counted as `skipped_body_too_large`).
- WebSocket upgrades are passed to primary (the connections spliced once primary accepts,
  diffsvc.gateway.tunnel), and not mirrored.
- Header values that are not valid UTF-8 (kept as surrogate escapes) are passed
  to primary as the bytes received and stored with U+FFFD in their place."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from diffsvc.gateway import upstream

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusal(method: str, target: str, shadow_copy: bool) -> tuple[int, str, str] | None:
    """(status, message, counter) when the request must not reach primary: any request
    target but origin-form (`refused_target`), or a shadow copy that came back
    (`refused_shadow_loop`). Both servers (aiohttp and the lean one) ask this."""
    if not target.startswith("/"):
        if method == "CONNECT":
            return 405, "CONNECT refused: diffsvc is not a forward proxy", "refused_target"
        return (400, "only origin-form request targets (/path) are served: diffsvc is not a "
                     "forward proxy", "refused_target")
    if shadow_copy:
        return (508, f"a shadow request ({upstream.SHADOW_HEADER}) came back to the gateway; "
                     "it is never sent to primary", "refused_shadow_loop")
    return None


def guard(counters_key: web.AppKey[Counter[str]]) -> Middleware:
    """Middleware: `refusal` for aiohttp-served modes, counted."""

    @web.middleware
    async def only_origin_form(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = refusal(request.method, request.raw_path,
                          upstream.SHADOW_HEADER in request.headers)
        if refused is None:
            return await handler(request)
        status, message, counter = refused
        request.app[counters_key][counter] += 1
        return web.Response(status=status, text=f"diffsvc: {message}\n",
                            headers={"Connection": "close"} if status >= 500 else None)

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
