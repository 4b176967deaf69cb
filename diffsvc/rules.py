"""Ignore rules, compiled once at start-up. Pure: no sockets, no Redis.

A RuleSet holds the global rules and the per-route ones; `for_endpoint` gives the effective
rules of one endpoint (cached), and `digest` identifies the rules a Comparison was made with."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from . import jsonpath
from .endpoints import RoutePattern, endpoint_name

if TYPE_CHECKING:
    from .config import Config

# Headers that differ between any two instances of the same build, never compared.
VOLATILE_HEADERS = frozenset({
    "date", "server", "age", "expires", "last-modified", "etag", "set-cookie",
    "x-request-id", "x-correlation-id", "x-trace-id", "traceparent", "tracestate",
    "x-amzn-trace-id", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled",
    "x-runtime", "x-response-time", "x-served-by", "x-cache", "x-cache-hits", "via", "cf-ray",
    "report-to", "nel", "alt-svc", "x-envoy-upstream-service-time",
    # transport details: the body is compared after decoding, so these carry no meaning
    "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
})


@dataclass(frozen=True, slots=True)
class EffectiveRules:
    """The rules that apply to one endpoint."""

    fields: tuple[jsonpath.JsonPath, ...] = ()
    headers: frozenset[str] = VOLATILE_HEADERS

    def header_ignored(self, name: str) -> bool:
        return name.lower() in self.headers


@dataclass(frozen=True, slots=True)
class RouteRules:
    pattern: RoutePattern
    fields: tuple[jsonpath.JsonPath, ...]
    headers: frozenset[str]


def _compile_fields(paths: list[str], where: str) -> tuple[jsonpath.JsonPath, ...]:
    return tuple(jsonpath.parse(p, rule=f"{where}[{i}] {p!r}") for i, p in enumerate(paths))


@dataclass(slots=True)
class RuleSet:
    global_fields: tuple[jsonpath.JsonPath, ...] = ()
    global_headers: frozenset[str] = frozenset()
    routes: tuple[RouteRules, ...] = ()
    extra: dict[str, tuple[jsonpath.JsonPath, ...]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, EffectiveRules] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, ignore: dict[str, list[str]], routes: list[dict[str, Any]],
              extra: dict[str, list[str]] | None = None) -> RuleSet:
        """`extra` maps an endpoint (or `*` for all) to more ignored fields, e.g. from the UI."""
        extra = extra or {}
        compiled = []
        for i, route in enumerate(routes):
            compiled.append(RouteRules(
                pattern=RoutePattern.compile(route["match"], route.get("name") or route["match"]),
                fields=_compile_fields(route["ignore"]["fields"], f"routes[{i}].ignore.fields"),
                headers=frozenset(h.lower() for h in route["ignore"]["headers"]),
            ))
        return cls(
            global_fields=_compile_fields(ignore["fields"] + extra.get("*", []), "ignore.fields"),
            global_headers=frozenset(h.lower() for h in ignore["headers"]),
            routes=tuple(compiled),
            extra={k: _compile_fields(v, f"rules[{k!r}]") for k, v in extra.items() if k != "*"},
            source={"ignore": ignore, "routes": routes, "extra": extra},
        )

    @classmethod
    def from_config(cls, cfg: Config) -> RuleSet:
        return cls.build(cfg.ignore, cfg.routes)

    def with_extra(self, extra: dict[str, list[str]]) -> RuleSet:
        return RuleSet.build(self.source["ignore"], self.source["routes"], extra)

    @property
    def route_patterns(self) -> tuple[RoutePattern, ...]:
        return tuple(r.pattern for r in self.routes)

    def endpoint(self, method: str, path: str) -> str:
        return endpoint_name(method, path, self.route_patterns)

    def for_endpoint(self, endpoint: str) -> EffectiveRules:
        cached = self._cache.get(endpoint)
        if cached is not None:
            return cached
        fields_ = list(self.global_fields)
        headers = set(VOLATILE_HEADERS | self.global_headers)
        for route in self.routes:
            if route.pattern.name == endpoint:
                fields_.extend(route.fields)
                headers |= route.headers
        fields_.extend(self.extra.get(endpoint, ()))
        rules = EffectiveRules(tuple(fields_), frozenset(headers))
        self._cache[endpoint] = rules
        return rules

    @property
    def digest(self) -> str:
        return hashlib.sha256(orjson.dumps(self.source, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
