"""The labelled corpus of response pairs (cases.yaml): each case gives the rules, the
primary and candidate replies, and the expected verdict and differing (folded) paths.

A reply in YAML: `status` (200), `headers` ({}), and one body: `json` (any value, sent as
application/json unless a content-type is given), `text` (a string, sent as is), `b64`
(raw bytes) or `zeros` (that many zero bytes: bomb material); `encoding` (gzip, deflate,
br, zstd, or `gzip-truncated`) compresses the body and sets Content-Encoding."""

from __future__ import annotations

import base64
import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import brotli
import orjson
import yaml
import zstandard

from diffsvc import config
from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.core.rules import RuleSet

HERE = Path(__file__).parent
MAX_BODY = 1024 * 1024
CATEGORIES = ("volatile", "regression", "malformed")


@dataclass
class Case:
    name: str
    category: str
    exchange: Exchange
    ruleset: RuleSet
    verdict: str
    paths: list[str] = field(default_factory=list)
    max_body: int = MAX_BODY


def _encode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body, mtime=0)
    if encoding == "gzip-truncated":
        return gzip.compress(body, mtime=0)[:-12]
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "br":
        return bytes(brotli.compress(body))
    if encoding == "zstd":
        return zstandard.ZstdCompressor().compress(body)
    return body


def _reply(spec: dict[str, Any]) -> Reply:
    headers = dict(spec.get("headers") or {})
    if "json" in spec:
        body = orjson.dumps(spec["json"])
        headers.setdefault("Content-Type", "application/json")
    elif "text" in spec:
        body = spec["text"].encode(spec.get("charset", "utf-8"))
    elif "b64" in spec:
        body = base64.b64decode(spec["b64"])
    elif "zeros" in spec:
        body = bytes(int(spec["zeros"]))
    else:
        body = b""
    encoding = spec.get("encoding")
    if encoding:
        body = _encode(body, encoding)
        headers["Content-Encoding"] = encoding.split("-")[0]
    return Reply(int(spec.get("status", 200)), [(str(k), str(v)) for k, v in headers.items()], body)


def _ruleset(spec: dict[str, Any]) -> RuleSet:
    return RuleSet.build(
        config.parse_ignore("ignore", spec.get("ignore")),
        config.parse_routes("routes", spec.get("routes")),
        ignore_order=config.parse_rule_paths("ignore_order", spec.get("ignore_order")),
        tolerance=config.parse_tolerance("tolerance", spec.get("tolerance")),
        only=config.parse_rule_paths("only", spec.get("only")))


def load_cases(path: Path = HERE / "cases.yaml") -> list[Case]:
    cases = []
    for spec in yaml.safe_load(path.read_text(encoding="utf-8")):
        request = Request(spec.get("method", "GET"), spec.get("path", "/api/thing"))
        exchange = Exchange(request, _reply(spec["primary"]), _reply(spec["candidate"]),
                            id=spec["name"])
        expect = spec["expect"]
        assert spec["category"] in CATEGORIES, spec["name"]
        cases.append(Case(spec["name"], spec["category"], exchange, _ruleset(spec.get("rules") or {}),
                          expect["verdict"], sorted(expect.get("paths") or []),
                          int(spec.get("max_body", MAX_BODY))))
    return cases
