"""One call to one upstream → a Reply. A network failure is data (`Reply.error`), never an
exception, so the caller decides what it means."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from multidict import CIMultiDict

from .models import Reply, Request

# RFC 9110 §7.6.1: connection-specific fields, never forwarded.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "proxy-authenticate", "proxy-authorization",
})
SHADOW_HEADER = "X-Diffsvc-Shadow"


def end_to_end(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers less hop-by-hop ones, including any the Connection header names."""
    named: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            named.update(v.strip().lower() for v in value.split(","))
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() not in named]


def forward_headers(request: Request, client_ip: str | None, *, shadow: bool) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in end_to_end(request.headers):
        if name.lower() not in ("host", "content-length"):
            out.add(name, value)
    if client_ip:
        prior = out.get("X-Forwarded-For")
        out["X-Forwarded-For"] = f"{prior}, {client_ip}" if prior else client_ip
    host = request.header_value("host")
    if host and "X-Forwarded-Host" not in out:
        out["X-Forwarded-Host"] = host
    if shadow:
        out[SHADOW_HEADER] = "1"
    return out


def new_session(limit: int = 0) -> aiohttp.ClientSession:
    """One pooled keep-alive session per process; bodies are kept as sent (no decompression)."""
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300, keepalive_timeout=30)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def call(session: aiohttp.ClientSession, base_url: str, request: Request,
               headers: CIMultiDict[str], timeout: float, max_body: int) -> Reply:
    """Send the request to base_url; the reply, or a Reply with `error` set."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            async with session.request(
                request.method, base_url + request.target, headers=headers,
                data=request.body or None, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None),
            ) as resp:
                body = await resp.content.read(max_body + 1)
                if len(body) > max_body:
                    return Reply(resp.status, list(resp.headers.items()), b"",
                                 _ms(started), f"body larger than {max_body} bytes")
                return Reply(resp.status, list(resp.headers.items()), body, _ms(started))
    except TimeoutError:
        return Reply(elapsed_ms=_ms(started), error=f"timeout after {timeout:g}s")
    except aiohttp.ClientError as exc:
        return Reply(elapsed_ms=_ms(started), error=f"{type(exc).__name__}: {exc}"[:300])
    except OSError as exc:
        return Reply(elapsed_ms=_ms(started), error=f"{type(exc).__name__}: {exc}"[:300])


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
