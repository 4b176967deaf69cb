"""One call to one upstream → a Reply. A network failure is data (`Reply.error`), never an
exception, so the caller decides what it means."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import aiohttp
from multidict import CIMultiDict

from diffsvc.core.models import Reply, Request
from diffsvc.gateway import failures, fastclient

# RFC 9110 §7.6.1: connection-specific fields, never forwarded.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "proxy-authenticate", "proxy-authorization",
})
SHADOW_HEADER = "X-Diffsvc-Shadow"


def end_to_end(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers less hop-by-hop ones, including any the Connection header names."""
    out: list[tuple[str, str]] = []
    named: set[str] = set()
    for name, value in headers:  # one pass, one lower() a header: this runs twice a request
        lower = name.lower()
        if lower not in HOP_BY_HOP:
            out.append((name, value))
        elif lower == "connection":
            named.update(v.strip().lower() for v in value.split(","))
    return [(k, v) for k, v in out if k.lower() not in named] if named else out


def append_header(headers: CIMultiDict[str], name: str, value: str) -> None:
    """Append to a list-valued header, however many times the client sent it."""
    prior = headers.getall(name, ())
    headers[name] = ", ".join((*prior, value)) if prior else value


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def forwarded_element(client_ip: str, host: str | None) -> str:
    """One RFC 7239 element: for (IPv6 bracketed and quoted), host (quoted), proto."""
    node = _quoted(f"[{client_ip}]") if ":" in client_ip else client_ip
    element = f"for={node}"
    if host:
        element += f";host={_quoted(host)}"
    return element + ";proto=http"


def forward_headers(request: Request, client_ip: str | None, *, shadow: bool,
                    forward_host: bool = False) -> CIMultiDict[str]:
    """The headers sent upstream; the client's Host goes along only with `forward_host`
    (otherwise each upstream is sent its own host:port, and X-Forwarded-Host the client's)."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in end_to_end(request.headers):
        if name.lower() not in ("host", "content-length"):
            out.add(name, value)
    host = request.header_value("host")
    if forward_host and host:
        out["Host"] = host
    if client_ip:
        append_header(out, "X-Forwarded-For", client_ip)
        append_header(out, "Forwarded", forwarded_element(client_ip, host))
    if host and "X-Forwarded-Host" not in out:
        out["X-Forwarded-Host"] = host
    if shadow:
        out[SHADOW_HEADER] = "1"
    return out


def new_session(limit: int = 0, ssl_context: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    """One pooled keep-alive session per process; bodies are kept as sent (no decompression).
    `ssl_context`: how https upstreams are checked (config.tls.client_context)."""
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300, keepalive_timeout=30,
                                     ssl=ssl_context if ssl_context is not None else True)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def call(session: aiohttp.ClientSession, base_url: str, request: Request,
               headers: CIMultiDict[str], timeout: float, max_body: int,
               data: Any = None) -> Reply:
    """Send the request to base_url; the reply, or a Reply with `error` set. `data` replaces
    the request's body (a body streamed to primary)."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            async with session.request(
                request.method, base_url + request.target, headers=headers,
                data=data if data is not None else (request.body or None),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None),
            ) as resp:
                body = await _read_capped(resp.content, max_body)
                if len(body) > max_body:
                    return failures.too_large(resp.status, list(resp.headers.items()), started,
                                              max_body)
                return Reply(resp.status, list(resp.headers.items()), body, failures.elapsed_ms(started))
    # ValueError, RuntimeError: e.g. a header aiohttp refuses to send
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError, RuntimeError) as exc:
        return failures.failed(exc, started, timeout)


class Clients:
    """The two HTTP clients of a process, and the one place that chooses between them: the
    lean keep-alive pool (diffsvc.fastclient, a third of aiohttp's CPU per call) for buffered
    bodies; aiohttp for streamed bodies. Both, and the WebSocket tunnel, check https
    upstreams with `ssl_context` (config.tls.client_context: tls.ca_file, tls.verify, mTLS)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.session = new_session(ssl_context=ssl_context)
        self.fast = fastclient.Client(ssl_context=ssl_context)

    async def call(self, base_url: str, request: Request, headers: CIMultiDict[str],
                   timeout: float, max_body: int, *, data: Any = None,
                   backoff: float = 0.0) -> Reply:
        """As `call`; `backoff` (fastclient only): after a refused connect, fail fast for
        that long (a dead shadow upstream then costs no connect attempt per request)."""
        if data is None and base_url.startswith(("http://", "https://")):
            host = headers.get("Host")  # forwarded: sent instead of the upstream's own
            items = headers.items() if host is None else [
                (k, v) for k, v in headers.items() if k.lower() != "host"]
            return await self.fast.call(base_url, request, items, timeout, max_body,
                                        backoff, host)
        return await call(self.session, base_url, request, headers, timeout, max_body, data)

    async def close(self) -> None:
        self.fast.close()
        await self.session.close()


async def _read_capped(content: aiohttp.StreamReader, cap: int) -> bytes:
    """The whole body, or its first cap+1 bytes (`read(n)` alone returns what has arrived)."""
    first = await content.read(cap + 1)
    if not first or content.at_eof() or len(first) > cap:
        return first
    chunks = [first]
    size = len(first)
    while size <= cap:
        chunk = await content.read(cap + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)

