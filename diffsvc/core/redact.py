"""Redaction before anything is stored: credentials and configured personal data never reach
Redis. Pure: imports neither aiohttp nor redis.

The `Authorization`, `Cookie`, `Set-Cookie` and `Proxy-Authorization` headers, any configured
header, the values of credential-like query parameters (`redact.query`: `token`, `api_key`,
`password`, `signature`, … by default) and any configured JSONPath in a JSON body (request and
every reply) are replaced.
By default the replacement is a keyed hash, `hmac:<16 hex>` (HMAC-SHA256 with `redact.key`),
so equal values still compare equal and a diff still shows that two values differ, never the
value itself. Cookies keep their names (`sid=hmac:…`); Set-Cookie keeps its attributes.
Mode `mask` replaces every value with `[redacted]` instead.

Without a configured key, each process draws a random one: hashes are then consistent within
one gateway (primary and candidate of an exchange are always redacted by the same process) but
not across gateways or restarts; set `redact.key` to make them stable."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, unquote_plus

import orjson

from diffsvc.core import jsonpath
from diffsvc.core.bodies import media_type
from diffsvc.core.codecs import codec, codings, decode
from diffsvc.core.jsonpath import Step
from diffsvc.core.models import Exchange, Headers, Reply
from diffsvc.errors import DecodeError

ALWAYS_REDACTED = ("authorization", "proxy-authorization", "cookie", "set-cookie")
MASK = "[redacted]"
HMAC_PREFIX = "hmac:"

class RedactSettings(Protocol):
    """The settings redaction reads (diffsvc.config.Config has them)."""

    @property
    def redact_headers(self) -> list[str]: ...

    @property
    def redact_fields(self) -> list[str]: ...

    @property
    def redact_key(self) -> str | None: ...

    @property
    def redact_mode(self) -> str: ...

    @property
    def max_body(self) -> int: ...

    @property
    def redact_query(self) -> list[str]: ...


class Redactor:
    """Redacts an Exchange in place; one per process, built from the config."""

    def __init__(self, headers: list[str] | tuple[str, ...] = (), fields: list[str] | tuple[str, ...] = (),
                 key: str | bytes | None = None, mode: str = "hmac", max_body: int = 10 * 1024 * 1024,
                 query: list[str] | tuple[str, ...] = ()):
        if mode not in ("hmac", "mask"):
            raise ValueError(f"redaction mode must be hmac or mask, not {mode!r}")
        self.headers = frozenset(ALWAYS_REDACTED) | {h.strip().lower() for h in headers}
        self.fields = tuple(jsonpath.parse(f, rule="redact.fields") for f in fields)
        self.query = frozenset(q.strip().lower() for q in query)
        if key is None:
            key = os.urandom(32)
        self._key = key.encode() if isinstance(key, str) else key
        self.mode = mode
        self.max_body = max_body

    @classmethod
    def from_config(cls, cfg: RedactSettings) -> Redactor:
        return cls(cfg.redact_headers, cfg.redact_fields, cfg.redact_key, cfg.redact_mode,
                   cfg.max_body, cfg.redact_query)

    def hide(self, value: str | bytes) -> str:
        """The stored stand-in of a secret value."""
        if self.mode == "mask":
            return MASK
        data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        return HMAC_PREFIX + hmac.new(self._key, data, hashlib.sha256).hexdigest()[:16]

    def __call__(self, exchange: Exchange) -> Exchange:
        req = exchange.request
        req.headers = self.redact_headers(req.headers)
        if self.query and req.query:
            req.query = self.redact_query(req.query)
        if self.fields and req.body:
            as_reply = Reply(headers=req.headers, body=req.body)
            req.body = self.redact_body(as_reply)
        for reply in (exchange.primary, exchange.candidate, exchange.secondary):
            if reply is None:
                continue
            reply.headers = self.redact_headers(reply.headers)
            if self.fields and reply.body:
                reply.body = self.redact_body(reply)
        return exchange

    def redact_all(self, exchanges: list[Exchange], counters: Counter[str]) -> list[Exchange]:
        """Redact a batch; an exchange that cannot be redacted is dropped (and counted as
        `redact_failed`), never stored as it is."""
        out = []
        for exchange in exchanges:
            try:
                out.append(self(exchange))
            except Exception:  # a bug here must cost one exchange, never leak it
                counters["redact_failed"] += 1
        return out

    # ---- headers ------------------------------------------------------------------------

    def redact_headers(self, headers: Headers) -> Headers:
        names = self.headers
        if not any(k.lower() in names for k, _ in headers):
            return headers  # the common case: nothing to copy
        out = []
        for name, value in headers:
            lname = name.lower()
            if lname not in names:
                out.append((name, value))
            elif lname == "cookie":
                out.append((name, "; ".join(self._cookie_pair(p) for p in value.split(";"))))
            elif lname == "set-cookie":
                first, sep, attributes = value.partition(";")
                out.append((name, self._cookie_pair(first) + sep + attributes))
            else:
                out.append((name, self._hide_credentials(value)))
        return out

    def _cookie_pair(self, pair: str) -> str:
        name, sep, value = pair.strip().partition("=")
        return f"{name}={self.hide(value)}" if sep else self.hide(name)

    def _hide_credentials(self, value: str) -> str:
        """`Bearer abc` → `Bearer hmac:…`: the scheme is kept, the credentials are not."""
        scheme, sep, rest = value.partition(" ")
        if sep and rest and scheme.isalpha() and len(scheme) <= 20:
            return f"{scheme} {self.hide(rest)}"
        return self.hide(value)

    # ---- query string ---------------------------------------------------------------------

    def redact_query(self, query: str) -> str:
        """`a=1&token=abc` → `a=1&token=hmac:…`: names and order are kept, as is every
        parameter not in `redact.query`; the raw (still percent-encoded) value is hidden."""
        out = []
        changed = False
        for part in query.split("&"):
            name, sep, value = part.partition("=")
            if sep and value and unquote_plus(name).lower() in self.query:
                part = f"{name}={quote(self.hide(value), safe=':')}"
                changed = True
            out.append(part)
        return "&".join(out) if changed else query

    # ---- JSON bodies ----------------------------------------------------------------------

    def redact_body(self, reply: Reply) -> bytes:
        """The body with every configured JSONPath replaced; unchanged when none matches or
        when it is not JSON (it cannot hold a JSONPath then)."""
        mime, _ = media_type(reply)
        if not (mime.endswith("json") or mime == "" or mime.startswith("text/")):
            return reply.body
        try:
            data = decode(reply, self.max_body)
            tree = orjson.loads(data)
        except (DecodeError, orjson.JSONDecodeError):
            return reply.body
        if not isinstance(tree, (dict, list)):
            return reply.body
        changed = False
        for path in self.fields:
            changed |= _replace(tree, path.steps, self._hide_value)
        if not changed:
            return reply.body
        out = orjson.dumps(tree)
        for coding in codings(reply):
            out = codec(coding).encode(out)
        return out

    def _hide_value(self, value: Any) -> str:
        if isinstance(value, str):
            return self.hide(value)
        return self.hide(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def _replace(node: Any, steps: tuple[Step, ...], hide: Callable[[Any], str]) -> bool:
    """Replace, in place, every node of a JSON tree the steps match; True when any did."""
    if not steps or not isinstance(node, (dict, list)):
        return False
    step, rest = steps[0], steps[1:]
    changed = False
    children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
    for key, child in children:
        if step.accepts(key):
            if rest:
                changed |= _replace(child, rest, hide)
            else:
                node[key] = hide(child)
                changed = True
                continue
        if step.recursive and isinstance(child, (dict, list)):
            changed |= _replace(child, steps, hide)
    return changed
