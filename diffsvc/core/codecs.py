"""Content-Encodings, each decoded *and* encoded in one table (CODECS): gzip (every member),
deflate (zlib or raw), br and zstd. Decoding is capped, so a decompression bomb raises
DecodeError instead of exhausting memory. Pure: no sockets, no Redis."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import brotli
import zstandard

from diffsvc.core.models import Reply
from diffsvc.errors import DecodeError


def _inflate(data: bytes, wbits: int, cap: int) -> tuple[bytes, bytes]:
    """One zlib/gzip/raw-deflate stream, at most `cap` bytes out; (output, bytes after it)."""
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, cap + 1)
    if len(out) > cap or d.unconsumed_tail:
        raise DecodeError(f"decompressed body exceeds the {cap}-byte cap")
    if not d.eof:
        raise DecodeError("compressed body is truncated")
    return out, d.unused_data


def _gunzip(data: bytes, cap: int) -> bytes:
    """Every member of a gzip stream (RFC 1952 allows several, concatenated), as gunzip
    reads them; trailing zero padding is ignored."""
    out = bytearray()
    try:
        while True:
            member, data = _inflate(data, 16 + zlib.MAX_WBITS, cap - len(out))
            out += member
            if not data.strip(b"\0"):
                return bytes(out)
    except zlib.error as exc:
        raise DecodeError(f"bad gzip data: {exc}") from None


def _deflate(data: bytes, cap: int) -> bytes:
    try:
        return _inflate(data, zlib.MAX_WBITS, cap)[0]
    except zlib.error:
        try:  # some servers send raw deflate without the zlib header
            return _inflate(data, -zlib.MAX_WBITS, cap)[0]
        except zlib.error as exc:
            raise DecodeError(f"bad deflate data: {exc}") from None


def _brotli(data: bytes, cap: int) -> bytes:
    d = brotli.Decompressor()
    try:
        out = bytearray(d.process(data, output_buffer_limit=cap + 1))
        while len(out) <= cap and not d.is_finished() and not d.can_accept_more_data():
            out += d.process(b"", output_buffer_limit=cap + 1 - len(out))
    except brotli.error as exc:
        raise DecodeError(f"bad brotli data: {exc}") from None
    if len(out) > cap:
        raise DecodeError(f"decompressed body exceeds the {cap}-byte cap")
    if not d.is_finished():
        raise DecodeError("compressed body is truncated")
    return bytes(out)


def _zstd(data: bytes, cap: int) -> bytes:
    try:
        with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
            out = reader.read(cap + 1)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"bad zstd data: {exc}") from None
    if len(out) > cap:
        raise DecodeError(f"decompressed body exceeds the {cap}-byte cap")
    return out


@dataclass(frozen=True, slots=True)
class Codec:
    """One Content-Encoding: `decode(data, cap)` undoes it (at most `cap` bytes out, else
    DecodeError), `encode(data)` applies it (redaction re-encodes a changed body)."""

    decode: Callable[[bytes, int], bytes]
    encode: Callable[[bytes], bytes]


CODECS: dict[str, Codec] = {
    "gzip": Codec(_gunzip, gzip.compress),
    "x-gzip": Codec(_gunzip, gzip.compress),
    "deflate": Codec(_deflate, zlib.compress),
    "br": Codec(_brotli, brotli.compress),
    "zstd": Codec(_zstd, lambda data: zstandard.ZstdCompressor().compress(data)),
}


def codings(reply: Reply) -> list[str]:
    """The reply's Content-Encodings in the order they were applied, `identity` left out."""
    return _codings(reply.header("content-encoding"))


def _codings(encoding: str | None) -> list[str]:
    if not encoding:
        return []
    encoding = encoding.lower()
    return [c.strip() for c in encoding.split(",") if c.strip() and c.strip() != "identity"]


def codec(coding: str) -> Codec:
    found = CODECS.get(coding)
    if found is None:
        raise DecodeError(f"unsupported Content-Encoding {coding!r}")
    return found


def decode(reply: Reply, cap: int) -> bytes:
    """The body with every Content-Encoding undone, in reverse order of application."""
    return decode_body(reply.body, reply.header("content-encoding"), cap)


def decode_body(body: bytes, content_encoding: str | None, cap: int) -> bytes:
    """`body` with every coding of a Content-Encoding value undone (see `decode`)."""
    for coding in reversed(_codings(content_encoding)):
        body = codec(coding).decode(body, cap)
    if len(body) > cap:
        raise DecodeError(f"body of {len(body)} bytes exceeds the {cap}-byte cap")
    return body
