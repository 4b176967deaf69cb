"""Endpoint names: `METHOD /path/template`, with numeric, UUID and long hex segments folded
to `{id}` unless a configured route names them."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID_SEGMENT = re.compile(
    r"\d+"
    r"|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}"
)


def fold_path(path: str) -> str:
    return "/".join("{id}" if _ID_SEGMENT.fullmatch(seg) else seg for seg in path.split("/"))


@dataclass(frozen=True, slots=True)
class RoutePattern:
    method: str
    regex: re.Pattern[str]
    name: str

    @classmethod
    def compile(cls, match: str, name: str) -> RoutePattern:
        method, _, template = match.partition(" ")
        parts = re.split(r"(\{[^/{}]+\})", template)
        body = "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p)
                       for p in parts)
        return cls(method, re.compile(body + r"/?\Z"), name)

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", "ANY") or self.method == method) and bool(
            self.regex.match(path))


def endpoint_name(method: str, path: str, routes: tuple[RoutePattern, ...] = ()) -> str:
    for route in routes:
        if route.matches(method, path):
            return route.name
    return f"{method} {fold_path(path)}"
