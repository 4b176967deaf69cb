"""Traffic control: which requests are mirrored, how many per second, and what the shadow
copy looks like. Used by the inline gateway, target mode and replay.

- allow/deny lists of `METHOD /path/glob` entries (deny wins; a non-empty allow list
  admits only what it names; an allow entry naming a method, e.g. `POST /api/search`,
  admits that method even without `allow_side_effects`);
- sampling: `sample_rate` times the matched route's `sample_rate`; with `sampling.key`
  (`header:NAME`, `cookie:NAME`, `query:NAME`) the key is hashed, so one key's requests
  are all mirrored or none (requests without the key are sampled at random);
- `shadow_rate_limit`: a token bucket of shadow requests per second (split between
  gateway `processes`);
- per-route `shadow_headers`: headers set (or, with a null value, removed) on the copy.

Pure: no aiohttp, no redis."""

from __future__ import annotations

import fnmatch
import hashlib
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from diffsvc.core.endpoints import RoutePattern
from diffsvc.core.models import Request
from diffsvc.errors import ConfigError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEY_SOURCES = ("header", "cookie", "query")
_HASH_SCALE = float(2**64)


def parse_sampling_key(key: str, value: Any) -> str | None:
    """`header:X-User-Id`, `cookie:session` or `query:user`; empty/None: no key."""
    if value is None or value == "":
        return None
    text = str(value)
    source, _, name = text.partition(":")
    if source not in KEY_SOURCES or not name.strip():
        raise ConfigError(key, "expected header:NAME, cookie:NAME or query:NAME", value)
    return f"{source}:{name.strip()}"


_RULE = re.compile(r"([A-Z]+|\*) (/\S*)")


def parse_method_paths(key: str, value: Any) -> list[str]:
    """A list of `METHOD /path/glob` entries (`*` for any method; `*` globs in the path)."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ConfigError(key, "expected a list of 'METHOD /path/glob' entries", value)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _RULE.fullmatch(item.strip()):
            raise ConfigError(f"{key}[{i}]", "expected 'METHOD /path/glob', e.g. 'GET /api/*' "
                                             "or '* /admin/*'", item)
    return [v.strip() for v in value]


def parse_shadow_headers(key: str, value: Any) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, "expected a mapping of header name to value (null removes it)",
                          value)
    out: dict[str, str | None] = {}
    for name, v in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name):
            raise ConfigError(f"{key}.{name}", "not a valid header name", name)
        if v is not None and not isinstance(v, (str, int, float)):
            raise ConfigError(f"{key}.{name}", "expected a string or null", v)
        if v is not None and ("\r" in str(v) or "\n" in str(v)):
            raise ConfigError(f"{key}.{name}", "a header value cannot hold a line break", v)
        out[name] = None if v is None else str(v)
    return out


@dataclass(frozen=True, slots=True)
class _Rule:
    method: str
    regex: re.Pattern[str]

    @classmethod
    def compile(cls, entry: str) -> _Rule:
        method, _, glob = entry.partition(" ")
        return cls(method, re.compile(fnmatch.translate(glob)))

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or self.method == method) and bool(self.regex.match(path))


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up (at least 2: with 1, the fraction
    of a token accrued between a refill and the next request would be lost)."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(2.0, rate / 20)
        self.tokens = self.burst
        self.clock = clock
        self.last = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def key_value(spec: str, request: Request) -> str | None:
    """The sampling key's value in the request, or None when it is absent."""
    source, _, name = spec.partition(":")
    if source == "header":
        return request.header_value(name)
    if source == "query":
        values = parse_qs(request.query, keep_blank_values=True).get(name)
        return values[0] if values else None
    raw = request.header_value("cookie")
    if not raw:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:  # noqa: BLE001 - a malformed Cookie header means no key
        return None
    morsel = cookie.get(name)
    return morsel.value if morsel is not None else None


def key_fraction(value: str) -> float:
    """A stable point in [0, 1) for a key value: the same in every process and run."""
    digest = hashlib.blake2b(value.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SCALE


class TrafficControl:
    """Decides whether a request is mirrored (None) or why not (a counter name)."""

    def __init__(self, cfg: Any, *, rng: Callable[[], float] = random.random,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.allow_side_effects: bool = cfg.allow_side_effects
        self.sample_rate: float = cfg.sample_rate
        self.key: str | None = cfg.sampling_key
        self.allow = [_Rule.compile(e) for e in cfg.allow]
        self.deny = [_Rule.compile(e) for e in cfg.deny]
        self.routes = [(RoutePattern.compile(r["match"], r["name"]), r["sample_rate"],
                        r.get("shadow_headers") or {})
                       for r in cfg.routes
                       if r["sample_rate"] < 1.0 or r.get("shadow_headers")]
        rate = cfg.shadow_rate_limit / max(1, cfg.processes)
        self.bucket = TokenBucket(rate, clock=clock) if rate > 0 else None
        self.rng = rng

    def _route(self, method: str, path: str) -> tuple[float, dict[str, str | None]]:
        for pattern, rate, headers in self.routes:
            if pattern.matches(method, path):
                return rate, headers
        return 1.0, {}

    def admitted(self, request: Request) -> str | None:
        """Method and allow/deny lists: None, or the reason the request is never mirrored."""
        method, path = request.method, request.path
        if self.deny and any(rule.matches(method, path) for rule in self.deny):
            return "skipped_denied"
        if self.allow:
            named = [rule for rule in self.allow if rule.matches(method, path)]
            if not named:
                return "skipped_not_allowed"
            if method in SAFE_METHODS or self.allow_side_effects:
                return None
            return None if any(rule.method == method for rule in named) else "skipped_method"
        if method not in SAFE_METHODS and not self.allow_side_effects:
            return "skipped_method"
        return None

    def sampled(self, request: Request) -> bool:
        rate = self.sample_rate
        if self.routes:
            rate *= self._route(request.method, request.path)[0]
        if rate >= 1.0:
            return True
        if self.key is not None:
            value = key_value(self.key, request)
            if value is not None:
                return key_fraction(value) < rate
        return self.rng() < rate

    def decide(self, request: Request) -> str | None:
        """None when the request is mirrored, else the reason (a counter name)."""
        reason = self.admitted(request)
        if reason is not None:
            return reason
        if not self.sampled(request):
            return "skipped_sample"
        if self.bucket is not None and not self.bucket.take():
            return "skipped_rate_limit"
        return None

    def rewrite(self, request: Request) -> Request:
        """The shadow copy with the matched route's `shadow_headers` applied (in place)."""
        if not self.routes:
            return request
        headers = self._route(request.method, request.path)[1]
        if headers:
            lower = {name.lower() for name in headers}
            kept = [(k, v) for k, v in request.headers if k.lower() not in lower]
            request.headers = kept + [(k, v) for k, v in headers.items() if v is not None]
        return request
