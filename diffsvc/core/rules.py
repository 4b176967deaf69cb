"""Comparison rules, compiled once at start-up. Pure: no sockets, no Redis.

A RuleSet holds the global rules and the per-route ones; `for_endpoint` gives the effective
rules of one endpoint (cached), and `digest` identifies the rules a Comparison was made with.

Rules of one endpoint: ignored fields (JSONPath, `[*]` and `..`), ignored headers (on top of
VOLATILE_HEADERS, case-insensitive), `ignore_order` (arrays compared as multisets), numeric
`tolerance` ({path, abs, rel}) and `only` (compare only these paths; `header.<name>` entries
select headers). Every path is parsed here, once; a malformed one raises RuleError naming it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from diffsvc.core import jsonpath
from diffsvc.core.endpoints import (
    DEFAULT_FOLDER,
    Folder,
    RoutePattern,
    by_precedence,
    endpoint_name,
)
from diffsvc.errors import RuleError

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

Paths = tuple[jsonpath.JsonPath, ...]
_SORT = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_DROP = object()


class RuleSettings(Protocol):
    """The settings the rules are compiled from (diffsvc.config.Config has them)."""

    @property
    def ignore(self) -> dict[str, list[str]]: ...

    @property
    def routes(self) -> list[dict[str, Any]]: ...

    @property
    def ignore_order(self) -> list[str]: ...

    @property
    def tolerance(self) -> list[dict[str, Any]]: ...

    @property
    def only(self) -> list[str]: ...

    @property
    def endpoints_fold(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Tolerance:
    """Numbers at `path` are equal when |a-b| <= abs or |a-b| <= rel * max(|a|, |b|)."""

    path: jsonpath.JsonPath
    abs: float = 0.0
    rel: float = 0.0

    def allows(self, a: float, b: float) -> bool:
        delta = abs(a - b)
        return delta <= self.abs or delta <= self.rel * max(abs(a), abs(b))


@dataclass(frozen=True, slots=True)
class EffectiveRules:
    """The rules that apply to one endpoint."""

    fields: Paths = ()
    headers: frozenset[str] = VOLATILE_HEADERS
    ignore_order: Paths = ()
    tolerance: tuple[Tolerance, ...] = ()
    only: Paths = ()
    only_headers: frozenset[str] | None = None  # None: every header not ignored is compared
    _removers: tuple[jsonpath.Remover, ...] = field(default=(), init=False, repr=False,
                                                    compare=False)

    def __post_init__(self) -> None:  # the ignored fields compiled once (jsonpath.remover)
        object.__setattr__(self, "_removers", tuple(f.remover() for f in self.fields))

    def header_ignored(self, name: str) -> bool:
        lname = name.lower()
        if self.only_headers is not None and lname not in self.only_headers:
            return True
        return lname in self.headers

    @property
    def reshapes(self) -> bool:
        """True when a parsed body must be changed before it is compared."""
        return bool(self.fields or self.only_headers is not None or self.ignore_order)

    def prepare(self, tree: Any) -> Any:
        """Apply ignored fields, `only` and `ignore_order` to a parsed tree (may mutate it)."""
        for remove in self._removers:
            remove(tree)
        if self.only_headers is not None:  # `only` given: keep the selected paths, if any
            tree = _select(tree, (), self.only) if self.only else _DROP
            if tree is _DROP:
                tree = None
        if self.ignore_order:
            tree = _order(tree, (), self.ignore_order)
        return tree

    def tolerates(self, path: jsonpath.Concrete, a: float, b: float) -> bool:
        return any(t.path.matches(path) and t.allows(a, b) for t in self.tolerance)


def _select(node: Any, path: jsonpath.Concrete, only: Paths) -> Any:
    if any(p.matches(path) for p in only):
        return node
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            sub = path + (key,)
            if any(p.may_lead_to(sub) for p in only):
                kept = _select(value, sub, only)
                if kept is not _DROP:
                    out[key] = kept
        return out
    if isinstance(node, list):  # positions are kept: unselected elements become null
        kept_items = []
        for i, value in enumerate(node):
            sub = path + (i,)
            kept = _select(value, sub, only) if any(p.may_lead_to(sub) for p in only) else _DROP
            kept_items.append(None if kept is _DROP else kept)
        return kept_items
    return _DROP


def _order(node: Any, path: jsonpath.Concrete, patterns: Paths) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            sub = path + (key,)
            if isinstance(value, (dict, list)) and any(p.may_lead_to(sub) for p in patterns):
                node[key] = _order(value, sub, patterns)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            sub = path + (i,)
            if isinstance(value, (dict, list)) and any(p.may_lead_to(sub) for p in patterns):
                node[i] = _order(value, sub, patterns)
        if any(p.matches(path) for p in patterns):
            node.sort(key=lambda item: orjson.dumps(item, option=_SORT))
    return node


@dataclass(frozen=True, slots=True)
class RouteRules:
    pattern: RoutePattern
    fields: Paths
    headers: frozenset[str]
    ignore_order: Paths = ()
    tolerance: tuple[Tolerance, ...] = ()
    only: Paths = ()
    only_headers: frozenset[str] = frozenset()


def _compile_fields(paths: list[str], where: str) -> Paths:
    return tuple(jsonpath.parse(p, rule=f"{where}[{i}] {p!r}") for i, p in enumerate(paths))


def _compile_paths(paths: list[str], where: str) -> tuple[Paths, frozenset[str]]:
    """JSONPaths and `header.<name>` paths (names lower-cased), as the report shows them."""
    body, headers = [], set()
    for i, p in enumerate(paths):
        if isinstance(p, str) and p.lower().startswith(jsonpath.HEADER):
            headers.add(p[len(jsonpath.HEADER):].lower())
        else:
            body.append(jsonpath.parse(p, rule=f"{where}[{i}] {p!r}"))
    return tuple(body), frozenset(headers)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise RuleError(where, "expected a number >= 0", value)
    return float(value)


def _compile_tolerance(items: Any, where: str) -> tuple[Tolerance, ...]:
    """From {abs, rel} (every number) or [{path, abs, rel}, ...]."""
    if isinstance(items, dict):
        items = [items]
    out = []
    for i, item in enumerate(items or []):
        at = f"{where}[{i}]"
        if not isinstance(item, dict) or set(item) - {"path", "abs", "rel"}:
            raise RuleError(at, "expected {path: JSONPath, abs: number, rel: number}", item)
        path = item.get("path", "$..*")
        out.append(Tolerance(jsonpath.parse(path, rule=f"{at}.path {path!r}"),
                             _number(item.get("abs", 0), f"{at}.abs"),
                             _number(item.get("rel", 0), f"{at}.rel")))
    return tuple(out)


@dataclass(slots=True)
class RuleSet:
    global_fields: Paths = ()
    global_headers: frozenset[str] = frozenset()
    routes: tuple[RouteRules, ...] = ()
    extra: dict[str, Paths] = field(default_factory=dict)
    extra_headers: dict[str, frozenset[str]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    global_order: Paths = ()
    global_tolerance: tuple[Tolerance, ...] = ()
    global_only: Paths = ()
    global_only_headers: frozenset[str] = frozenset()
    folder: Folder = DEFAULT_FOLDER
    _patterns: tuple[RoutePattern, ...] = ()  # the routes in precedence order
    _cache: dict[str, EffectiveRules] = field(default_factory=dict, repr=False)
    _digest: str = field(default="", repr=False)

    @classmethod
    def build(cls, ignore: dict[str, list[str]], routes: list[dict[str, Any]],
              extra: dict[str, list[str]] | None = None, *,
              ignore_order: list[str] | None = None, tolerance: Any = None,
              only: list[str] | None = None, fold: Folder = DEFAULT_FOLDER) -> RuleSet:
        """`extra` maps an endpoint (or `*` for all) to more ignored fields (JSONPaths or
        `header.<name>`), e.g. from the UI."""
        extra = extra or {}
        compiled = []
        for i, route in enumerate(routes):
            where = f"routes[{i}]"
            r_only, r_only_headers = _compile_paths(route.get("only") or [], f"{where}.only")
            compiled.append(RouteRules(
                pattern=RoutePattern.compile(route["match"], route.get("name") or route["match"]),
                fields=_compile_fields(route["ignore"]["fields"], f"{where}.ignore.fields"),
                headers=frozenset(h.lower() for h in route["ignore"]["headers"]),
                ignore_order=_compile_fields(route.get("ignore_order") or [],
                                             f"{where}.ignore_order"),
                tolerance=_compile_tolerance(route.get("tolerance"), f"{where}.tolerance"),
                only=r_only, only_headers=r_only_headers,
            ))
        g_only, g_only_headers = _compile_paths(only or [], "only")
        added = {k: _compile_paths(v, f"rules[{k!r}]") for k, v in extra.items()}
        everywhere_fields, everywhere_headers = added.pop("*", ((), frozenset()))
        return cls(
            global_fields=_compile_fields(ignore["fields"], "ignore.fields") + everywhere_fields,
            global_headers=frozenset(h.lower() for h in ignore["headers"]) | everywhere_headers,
            routes=tuple(compiled),
            extra={k: fields_ for k, (fields_, _) in added.items()},
            extra_headers={k: headers for k, (_, headers) in added.items()},
            source={"ignore": ignore, "routes": routes, "extra": extra,
                    "ignore_order": list(ignore_order or []), "tolerance": tolerance or [],
                    "only": list(only or [])},
            global_order=_compile_fields(ignore_order or [], "ignore_order"),
            global_tolerance=_compile_tolerance(tolerance, "tolerance"),
            global_only=g_only, global_only_headers=g_only_headers, folder=fold,
            _patterns=by_precedence(r.pattern for r in compiled),
        )

    @classmethod
    def from_config(cls, cfg: RuleSettings) -> RuleSet:
        return cls.build(cfg.ignore, cfg.routes, ignore_order=cfg.ignore_order,
                         tolerance=cfg.tolerance, only=cfg.only,
                         fold=Folder.compile(cfg.endpoints_fold))

    def with_extra(self, extra: dict[str, list[str]]) -> RuleSet:
        s = self.source
        return RuleSet.build(s["ignore"], s["routes"], extra, ignore_order=s["ignore_order"],
                             tolerance=s["tolerance"], only=s["only"], fold=self.folder)

    @property
    def route_patterns(self) -> tuple[RoutePattern, ...]:
        """The routes in precedence order: those with query conditions first."""
        return self._patterns

    def endpoint(self, method: str, path: str, query: str = "") -> str:
        return endpoint_name(method, path, self._patterns, query, self.folder)

    def for_endpoint(self, endpoint: str) -> EffectiveRules:
        cached = self._cache.get(endpoint)
        if cached is not None:
            return cached
        fields_, order = list(self.global_fields), list(self.global_order)
        tolerance, only = list(self.global_tolerance), list(self.global_only)
        only_headers = set(self.global_only_headers)
        headers = set(VOLATILE_HEADERS | self.global_headers)
        for route in self.routes:
            if route.pattern.name == endpoint:
                fields_.extend(route.fields)
                headers |= route.headers
                order.extend(route.ignore_order)
                tolerance[:0] = route.tolerance  # the route's own tolerance is tried first
                only.extend(route.only)
                only_headers |= route.only_headers
        fields_.extend(self.extra.get(endpoint, ()))
        headers |= self.extra_headers.get(endpoint, frozenset())
        selective = bool(only or only_headers)
        rules = EffectiveRules(tuple(fields_), frozenset(headers), tuple(order), tuple(tolerance),
                               tuple(only), frozenset(only_headers) if selective else None)
        self._cache[endpoint] = rules
        return rules

    @property
    def digest(self) -> str:
        if not self._digest:
            raw = orjson.dumps(self.source, option=_SORT)
            self._digest = hashlib.sha256(raw).hexdigest()[:12]
        return self._digest
