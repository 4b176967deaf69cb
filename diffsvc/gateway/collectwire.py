"""The collector's wire format: one exchange a proxy saw (the client's request and the answer
production actually gave it), as one JSON document POSTed to `EXCHANGES_PATH`, and its
OpenAPI description (served at `OPENAPI_PATH`).

Bodies are base64, so any bytes travel. The proxies' Lua has no JSON library and escapes
header bytes >= 0x80 as `\\u00XX`; such values are read back as the UTF-8 they were (invalid
UTF-8 becomes U+FFFD, as the inline gateway stores it). Pseudo-headers are dropped (`:authority`
becomes `Host`), and so are hop-by-hop headers (nginx reports a `connection: close` the client
never saw)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from diffsvc.core.models import Headers, Reply, Request
from diffsvc.errors import DiffsvcError
from diffsvc.gateway.upstream import end_to_end

EXCHANGES_PATH = "/diffsvc/v1/exchanges"
OPENAPI_PATH = "/diffsvc/v1/openapi.json"


class WireError(DiffsvcError):
    """An exchange that does not follow the wire format; the message names the field."""


@dataclass(slots=True)
class Shipped:
    request: Request
    primary: Reply
    truncated: bool  # a body was larger than the proxy's cap: not comparable
    client_ip: str | None


def _text(value: str) -> str:
    """A header value as the proxy's bytes meant it: `\\u00XX` escapes are bytes."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # real non-Latin-1 characters: sent as proper JSON text
        return value


def _headers(doc: dict[str, Any], field: str) -> Headers:
    raw = doc.get(field, [])
    if isinstance(raw, dict):
        raw = list(raw.items())
    if not isinstance(raw, list):
        raise WireError(f"{field}: expected a list of [name, value] pairs")
    out: Headers = []
    for item in raw:
        if (not isinstance(item, (list, tuple)) or len(item) != 2
                or not all(isinstance(x, str) for x in item)):
            raise WireError(f"{field}: expected [name, value] string pairs, got {item!r:.60}")
        name, value = item
        if name.startswith(":"):
            if name != ":authority":
                continue
            name = "Host"
        out.append((name, _text(value)))
    return end_to_end(out)


def _body(doc: dict[str, Any], field: str) -> bytes:
    value = doc.get(field) or ""
    if not isinstance(value, str):
        raise WireError(f"{field}: expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{field}: not valid base64") from None


def parse(raw: bytes) -> Shipped:
    """The exchange in one POSTed document, or WireError."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise WireError("expected a JSON object")
    method, target, status = doc.get("method"), doc.get("target"), doc.get("status")
    if not isinstance(method, str) or not method.isalpha():
        raise WireError("method: expected an HTTP method, e.g. GET")
    if not isinstance(target, str) or not target.startswith("/"):
        raise WireError("target: expected an origin-form target, e.g. /path?q=1")
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise WireError("status: expected production's status code, 100-599")
    elapsed = doc.get("elapsed_ms") or 0.0
    if not isinstance(elapsed, (int, float)):
        raise WireError("elapsed_ms: expected a number")
    client = doc.get("client")
    path, _, query = target.partition("?")
    request = Request(method.upper(), path, query, _headers(doc, "headers"), _body(doc, "body"))
    primary = Reply(status, _headers(doc, "response_headers"), _body(doc, "response_body"),
                    float(elapsed))
    truncated = bool(doc.get("body_truncated")) or bool(doc.get("response_truncated"))
    return Shipped(request, primary, truncated, client if isinstance(client, str) else None)


def encode(request: Request, primary: Reply, client: str | None = None) -> bytes:
    """The document a proxy sends for this exchange (tests and tools)."""
    return orjson.dumps({
        "method": request.method, "target": request.target,
        "headers": request.headers, "body": base64.b64encode(request.body).decode(),
        "status": primary.status, "response_headers": primary.headers,
        "response_body": base64.b64encode(primary.body).decode(),
        "elapsed_ms": primary.elapsed_ms, "client": client})


_STR = {"type": "string"}
_PAIRS = {"type": "array", "items": {"type": "array", "items": _STR, "minItems": 2,
                                     "maxItems": 2},
          "description": "[name, value] pairs in the order seen; pseudo-headers but "
                         "`:authority` and hop-by-hop headers are ignored; `\\u0080`-`\\u00ff` "
                         "escapes stand for the bytes of UTF-8 text"}
_B64 = {"type": "string", "contentEncoding": "base64"}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "diffsvc collector", "version": "1",
             "description": "Exchanges shipped by a proxy (Envoy, Istio, nginx: see `diffsvc "
                            "proxy-config`): the client's request and production's actual "
                            "response. diffsvc sends the request to the candidate (and "
                            "secondary) and compares."},
    "components": {"securitySchemes": {"token": {
        "type": "http", "scheme": "bearer",
        "description": "`collect.token`; required when the collector listens beyond loopback"}},
        "schemas": {"Exchange": {"type": "object", "required": ["method", "target", "status"],
                                 "properties": {
            "method": {"type": "string", "example": "GET"},
            "target": {"type": "string", "example": "/api/users/7?fields=name",
                       "description": "origin-form request target"},
            "headers": _PAIRS, "body": {**_B64, "description": "request body"},
            "body_truncated": {"type": "boolean", "description": "the request body was not "
                               "captured whole: the exchange is counted, not compared"},
            "status": {"type": "integer", "description": "production's status"},
            "response_headers": _PAIRS, "response_body": {**_B64, "description": "as sent "
                                                          "(still gzip when it was)"},
            "response_truncated": {"type": "boolean"},
            "elapsed_ms": {"type": "number", "description": "production's latency"},
            "client": {"type": "string", "description": "client IP"}}}}},
    "security": [{"token": []}],
    "paths": {EXCHANGES_PATH: {"post": {
        "summary": "ship one exchange",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Exchange"}}}},
        "responses": {
            "202": {"description": "accepted; compared in the background unless traffic "
                                   "control skips it or the collector is full (counted)"},
            "400": {"description": "not an exchange (the message names the field)"},
            "401": {"description": "missing or wrong token"},
            "413": {"description": "larger than the collector takes"}}}}},
}
