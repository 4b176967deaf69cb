"""The collector's wire format: what the proxies' Lua writes is read back as the request and
production's reply, binary-safe."""

from __future__ import annotations

import base64

import orjson
import pytest

from diffsvc.core.models import Reply, Request
from diffsvc.gateway import collectwire


def test_round_trip_binary_bodies() -> None:
    body = bytes(range(256))
    shipped = collectwire.parse(collectwire.encode(
        Request("POST", "/a/b", "q=1&r", [("Host", "h"), ("X-A", "1")], body),
        Reply(201, [("Content-Type", "application/octet-stream")], body[::-1], 12.5), "10.0.0.1"))
    assert shipped.request == Request("POST", "/a/b", "q=1&r", [("Host", "h"), ("X-A", "1")], body)
    assert (shipped.primary.status, shipped.primary.body) == (201, body[::-1])
    assert shipped.primary.elapsed_ms == 12.5 and shipped.client_ip == "10.0.0.1"
    assert not shipped.truncated


def test_lua_escapes_pseudo_and_hop_by_hop_headers() -> None:
    # Lua escapes every byte >= 0x80 as \u00XX: "café" in UTF-8 is c3 a9
    raw = (b'{"method":"GET","target":"/","status":200,'
           b'"headers":[[":authority","shop"],[":path","/"],["x-name","caf\\u00c3\\u00a9"],'
           b'["x-bad","\\u00ff"]],'
           b'"response_headers":[[":status","200"],["connection","close"],["date","d"]],'
           b'"body_truncated":true}')
    shipped = collectwire.parse(raw)
    assert shipped.request.headers == [("Host", "shop"), ("x-name", "café"), ("x-bad", "\ufffd")]
    assert shipped.primary.headers == [("date", "d")]
    assert shipped.truncated


@pytest.mark.parametrize(("doc", "field"), [
    (b"[]", "object"), (b"{", "JSON"),
    (b'{"method":"GET","target":"http://x/","status":200}', "target"),
    (b'{"method":"GET","target":"/","status":0}', "status"),
    (b'{"method":"G T","target":"/","status":200}', "method"),
    (b'{"method":"GET","target":"/","status":200,"body":"!!"}', "body"),
    (b'{"method":"GET","target":"/","status":200,"headers":[["a"]]}', "headers"),
])
def test_bad_documents_name_the_field(doc: bytes, field: str) -> None:
    with pytest.raises(collectwire.WireError, match=field):
        collectwire.parse(doc)


def test_openapi_describes_every_field_encode_writes() -> None:
    doc = orjson.loads(collectwire.encode(Request("GET", "/"), Reply(200, [], b"x")))
    props = collectwire.OPENAPI["components"]["schemas"]["Exchange"]["properties"]
    assert set(doc) <= set(props)
    assert base64.b64decode(doc["response_body"]) == b"x"
