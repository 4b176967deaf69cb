"""The one record that travels end to end: Exchange (request + a Reply per upstream),
and the Comparison a worker makes of it. Both serialise to versioned bytes for Redis.

An Exchange is stored as a frame: `DX2\n`, the length of a JSON header (4 bytes, big-endian),
the JSON header (everything but the bodies, and the body lengths), then the raw bodies. No
base64: encoding and decoding the bodies cost as much as parsing them. Version 1 (one JSON
document, base64 bodies) is still read."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import zstandard

SCHEMA_VERSION = 2
_FRAME = b"DX2\n"
_ZSTD_FRAME = b"DXZ\n"  # a DX2 frame, zstd-compressed
_HEADER_LEN = 4
_compressors = threading.local()  # a ZstdCompressor is not safe across threads


def _zstd() -> zstandard.ZstdCompressor:
    compressor: zstandard.ZstdCompressor | None = getattr(_compressors, "c", None)
    if compressor is None:
        compressor = _compressors.c = zstandard.ZstdCompressor(level=1)
    return compressor

Headers = list[tuple[str, str]]
Verdict = Literal["match", "mismatch", "error"]


def first_header(headers: Headers, name: str) -> str | None:
    """The value of the first header called `name` (case-insensitive), or None."""
    lname = name.lower()
    return next((v for k, v in headers if k.lower() == lname), None)


@dataclass(slots=True)
class Reply:
    """What one upstream answered, or `error` when the call failed (a value, not an exception)
    with `error_kind`, one of diffsvc.errors.ERROR_KINDS, saying why."""

    status: int = 0
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    elapsed_ms: float = 0.0
    error: str | None = None
    error_kind: str | None = None

    def header(self, name: str) -> str | None:
        return first_header(self.headers, name)

    def meta(self) -> dict[str, Any]:
        """Everything but the body."""
        meta = {"status": self.status, "headers": self.headers, "elapsed_ms": self.elapsed_ms,
                "error": self.error}
        if self.error_kind:
            meta["error_kind"] = self.error_kind
        return meta

    @classmethod
    def from_meta(cls, d: dict[str, Any], body: bytes) -> Reply:
        return cls(status=int(d["status"]), headers=[(str(k), str(v)) for k, v in d["headers"]],
                   body=body, elapsed_ms=float(d["elapsed_ms"]), error=d.get("error"),
                   error_kind=d.get("error_kind"))

    @property
    def failure(self) -> str | None:
        """None when the call succeeded, else why it failed: `error_kind`, or `other` for a
        record written before kinds were stored."""
        return (self.error_kind or "other") if self.error else None


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str = ""
    headers: Headers = field(default_factory=list)
    body: bytes = b""

    def header_value(self, name: str) -> str | None:
        return first_header(self.headers, name)

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def meta(self) -> dict[str, Any]:
        """Everything but the body."""
        return {"method": self.method, "path": self.path, "query": self.query,
                "headers": self.headers}

    @classmethod
    def from_meta(cls, d: dict[str, Any], body: bytes) -> Request:
        return cls(method=d["method"], path=d["path"], query=d.get("query", ""),
                   headers=[(str(k), str(v)) for k, v in d["headers"]], body=body)


def new_id() -> str:
    return uuid.uuid4().hex


def _pairs(headers: list[list[str]]) -> Headers:
    """A frame's headers: written by `to_bytes` from str pairs, so orjson gives str back."""
    return list(map(tuple, headers))  # type: ignore[arg-type]


def _reply(d: dict[str, Any], body: bytes) -> Reply:
    """`Reply.from_meta` for a frame, positional (the worker decodes one per reply)."""
    return Reply(int(d["status"]), _pairs(d["headers"]), body, float(d["elapsed_ms"]),
                 d.get("error"), d.get("error_kind"))


@dataclass(slots=True)
class Exchange:
    """A request and the replies of primary, candidate and (optionally) secondary."""

    request: Request
    primary: Reply
    candidate: Reply
    secondary: Reply | None = None
    id: str = field(default_factory=new_id)
    captured_at: float = field(default_factory=time.time)
    build: str = ""  # the candidate build that answered (see `stamp`); "" when not known

    def to_bytes(self, compress: bool = False) -> bytes:
        """The stored frame: JSON header and raw bodies; with `compress`, that frame
        zstd-compressed (level 1: a 4.7 KB exchange becomes 1.1 KB in ~12 µs)."""
        replies = [self.primary, self.candidate, self.secondary]
        bodies = [self.request.body] + [r.body if r else b"" for r in replies]
        meta = {
            "v": SCHEMA_VERSION, "id": self.id, "captured_at": self.captured_at,
            "request": self.request.meta(), "primary": self.primary.meta(),
            "candidate": self.candidate.meta(),
            "secondary": self.secondary.meta() if self.secondary else None,
            "bodies": [len(b) for b in bodies]}
        if self.build:
            meta["build"] = self.build
        header = orjson.dumps(meta)
        frame = b"".join([_FRAME, len(header).to_bytes(_HEADER_LEN, "big"), header, *bodies])
        return _ZSTD_FRAME + _zstd().compress(frame) if compress else frame

    @classmethod
    def from_bytes(cls, raw: bytes) -> Exchange:
        if raw.startswith(_ZSTD_FRAME):
            raw = zstandard.ZstdDecompressor().decompress(raw[len(_ZSTD_FRAME):])
        if not raw.startswith(_FRAME):
            return cls._from_v1(orjson.loads(raw))
        start = len(_FRAME) + _HEADER_LEN
        end = start + int.from_bytes(raw[len(_FRAME):start], "big")
        d = orjson.loads(raw[start:end])
        bodies = []
        for n in d["bodies"]:
            bodies.append(raw[end:end + n])
            end += n
        if end != len(raw):
            raise ValueError(f"exchange frame holds {len(raw)} bytes, its header says {end}")
        q, s = d["request"], d["secondary"]
        return cls(Request(q["method"], q["path"], q.get("query", ""), _pairs(q["headers"]),
                           bodies[0]),
                   _reply(d["primary"], bodies[1]), _reply(d["candidate"], bodies[2]),
                   _reply(s, bodies[3]) if s else None,
                   d["id"], float(d["captured_at"]), str(d.get("build", "")))

    @classmethod
    def _from_v1(cls, d: dict[str, Any]) -> Exchange:
        """Version 1: one JSON document, bodies in base64."""
        if d.get("v") != 1:
            raise ValueError(f"exchange schema version {d.get('v')!r}, expected {SCHEMA_VERSION}")

        def reply(r: dict[str, Any]) -> Reply:
            return Reply.from_meta(r, base64.b64decode(r["body"]))

        return cls(id=d["id"], captured_at=float(d["captured_at"]),
                   request=Request.from_meta(d["request"], base64.b64decode(d["request"]["body"])),
                   primary=reply(d["primary"]), candidate=reply(d["candidate"]),
                   secondary=reply(d["secondary"]) if d.get("secondary") else None)


@dataclass(slots=True, frozen=True)
class FieldDiff:
    """One differing place: a JSONPath (or `status`, `header.<name>`, `body`), a kind, both values."""

    path: str  # folded: indices as [*], the form used in aggregates and rules
    kind: str  # changed | added | removed | type_changed | length_changed
    primary: Any = None
    candidate: Any = None
    location: str = ""  # the concrete path in this exchange, indices kept

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "primary": self.primary,
                "candidate": self.candidate, "location": self.location or self.path}


@dataclass(slots=True)
class Comparison:
    """The verdict a worker made of one Exchange."""

    exchange_id: str
    endpoint: str
    verdict: Verdict
    diffs: list[FieldDiff] = field(default_factory=list)
    body_kind: str = "json"  # json | text | bytes | empty | json-invalid (compared as text)
    error: str | None = None
    rules_digest: str = ""
    compared_at: float = field(default_factory=time.time)
    build: str = ""  # the candidate build compared (Exchange.build)

    @property
    def paths(self) -> list[str]:
        return sorted({d.path for d in self.diffs})

    def to_bytes(self) -> bytes:
        d: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "exchange_id": self.exchange_id,
            "endpoint": self.endpoint,
            "verdict": self.verdict,
            "diffs": [d.to_dict() for d in self.diffs],
            "body_kind": self.body_kind,
            "error": self.error,
            "rules_digest": self.rules_digest,
            "compared_at": self.compared_at,
        }
        if self.build:
            d["build"] = self.build
        return orjson.dumps(d, default=repr)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Comparison:
        d = orjson.loads(raw)
        return cls(
            exchange_id=d["exchange_id"],
            endpoint=d["endpoint"],
            verdict=d["verdict"],
            diffs=[FieldDiff(**x) for x in d["diffs"]],
            body_kind=d["body_kind"],
            error=d.get("error"),
            rules_digest=d.get("rules_digest", ""),
            compared_at=float(d.get("compared_at", 0.0)),
            build=str(d.get("build", "")),
        )


def stamp(candidate: Reply, version_header: str | None, version: str | None) -> str:
    """The candidate build that answered: its `version_header` when it sent one, else the
    configured `candidate_version`, else "" (not known)."""
    shown = candidate.header(version_header) if version_header else None
    return (shown or version or "").strip()[:100]
