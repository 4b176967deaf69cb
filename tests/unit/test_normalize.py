"""Bodies from the wire to a comparable form: decoding (with a size cap), charsets, parsing."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli
import pytest
import zstandard

from diffsvc.core.bodies import canonical, decode, media_type, parse
from diffsvc.core.models import Reply
from diffsvc.errors import DecodeError

PAYLOAD = b'{"id": 7, "rows": [' + b", ".join([b'{"name": "caf\xc3\xa9", "n": [1, 2]}'] * 50) + b"]}"
MB = 1024 * 1024


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": _zstd,
}


def reply(body: bytes, content_type: str | None = "application/json",
          encoding: str | None = None) -> Reply:
    headers = []
    if content_type:
        headers.append(("Content-Type", content_type))
    if encoding:
        headers.append(("Content-Encoding", encoding))
    return Reply(200, headers, body)


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_decode_each_encoding(encoding: str) -> None:
    encoded = ENCODERS[encoding](PAYLOAD)
    assert encoded != PAYLOAD
    assert decode(reply(encoded, encoding=encoding.upper()), MB) == PAYLOAD
    assert parse(reply(encoded, encoding=encoding), MB).value["id"] == 7


def test_decode_raw_deflate_without_zlib_header() -> None:
    assert decode(reply(_raw_deflate(PAYLOAD), encoding="deflate"), MB) == PAYLOAD


def test_decode_stacked_encodings_in_reverse_order() -> None:
    body = brotli.compress(gzip.compress(PAYLOAD))
    assert decode(reply(body, encoding="gzip, br"), MB) == PAYLOAD


def test_decode_identity_and_none() -> None:
    assert decode(reply(PAYLOAD, encoding="identity"), MB) == PAYLOAD
    assert decode(reply(PAYLOAD), MB) == PAYLOAD


def test_zstd_with_several_frames() -> None:
    body = _zstd(b'{"a": ') + _zstd(b"1}")
    assert decode(reply(body, encoding="zstd"), MB) == b'{"a": 1}'


def test_gzip_with_several_members_is_read_whole_as_gunzip_does() -> None:
    body = gzip.compress(b'{"a": ') + gzip.compress(b"1}") + b"\0" * 8  # padding is ignored
    assert decode(reply(body, encoding="gzip"), MB) == b'{"a": 1}'
    with pytest.raises(DecodeError, match="cap"):  # the cap spans all members
        decode(reply(gzip.compress(b"x" * 600) * 2, encoding="gzip"), 1000)
    with pytest.raises(DecodeError, match="bad gzip"):
        decode(reply(gzip.compress(b"{}") + b"garbage", encoding="gzip"), MB)


@pytest.mark.parametrize("encoding", [*sorted(ENCODERS), "raw-deflate"])
def test_decompression_bomb_over_the_cap_is_a_decode_error(encoding: str) -> None:
    bomb_size = 16 * MB
    zeros = b"\0" * bomb_size
    encoder = _raw_deflate if encoding == "raw-deflate" else ENCODERS[encoding]
    compressed = encoder(zeros)
    del zeros
    assert len(compressed) < MB  # tiny on the wire
    header = "deflate" if encoding == "raw-deflate" else encoding
    with pytest.raises(DecodeError, match="cap"):
        decode(reply(compressed, encoding=header), MB)


def test_plain_body_over_the_cap_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="cap"):
        decode(reply(b"x" * 2048), 1024)


def test_bad_compressed_data_and_unknown_encoding_are_decode_errors() -> None:
    for encoding in ("gzip", "deflate", "br", "zstd"):
        with pytest.raises(DecodeError, match="bad"):
            decode(reply(b"definitely not compressed", encoding=encoding), MB)
    with pytest.raises(DecodeError, match="unsupported Content-Encoding 'lzma'"):
        decode(reply(b"x", encoding="lzma"), MB)


def test_charset_latin1_text() -> None:
    body = parse(reply("café\nnaïve".encode("latin-1"), "text/plain; charset=ISO-8859-1"), MB)
    assert (body.kind, body.value) == ("text", ["café", "naïve"])


def test_charset_latin1_json() -> None:
    body = parse(reply('{"name": "café"}'.encode("latin-1"),
                       'application/json; charset="latin-1"'), MB)
    assert (body.kind, body.value) == ("json", {"name": "café"})


def test_claims_json_but_invalid_is_compared_as_text() -> None:
    body = parse(reply(b'{"id": 1,', "application/json"), MB)
    assert body.kind == "json-invalid"
    assert body.value == ['{"id": 1,']
    assert "claims JSON" in body.note


@pytest.mark.parametrize(
    ("content_type", "data", "kind"),
    [
        ("application/json", b"[1, 2]", "json"),
        ("application/problem+json", b'{"a": 1}', "json"),
        (None, b'{"a": 1}', "json"),  # no type, looks like JSON
        ("application/x-www-form-urlencoded", b"a=1&b=&a=2", "form"),
        ("text/plain; charset=utf-8", b"hi\nthere", "text"),
        ("text/html; charset=utf-8", b"<p>hi</p>\n<p>there</p>", "html"),
        ("application/xml", b"<a/>", "xml"),
        ("image/png", b"\x89PNG\r\n\x1a\n\x00\x01", "bytes"),
        ("application/octet-stream", b"\xff\xfe\x00", "bytes"),
        ("application/json", b"", "empty"),
    ],
)
def test_body_kinds(content_type: str | None, data: bytes, kind: str) -> None:
    assert parse(reply(data, content_type), MB).kind == kind


def test_form_and_bytes_values() -> None:
    form = parse(reply(b"a=1&b=&a=2", "application/x-www-form-urlencoded"), MB)
    assert form.value == {"a": ["1", "2"], "b": [""]}
    binary = parse(reply(b"\x00\x01\x02", "image/png"), MB)
    assert binary.value["size"] == 3 and len(binary.value["sha256"]) == 64


def test_media_type() -> None:
    r = reply(b"", 'Text/HTML; Charset="UTF-8"; boundary=x')
    assert media_type(r) == ("text/html", "UTF-8")
    assert media_type(reply(b"", None)) == ("", None)


def test_canonical_ignores_key_order_only() -> None:
    assert canonical({"a": 1, "b": [1, 2]}) == canonical({"b": [1, 2], "a": 1})
    assert canonical([1, 2]) != canonical([2, 1])
