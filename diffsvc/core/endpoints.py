"""Endpoint names: `METHOD /path/template`. A configured route names the requests it matches
(its path template and, when it has one, its query conditions); any other path has its
id-like segments folded by the `endpoints.fold` rules (numbers, UUIDs, long hex, ids with
an extension, slugs ending in an id, long tokens), so `/db/t/42.json` is `/db/t/{id}.json`.

Precedence: routes with query conditions are tried first, then the others, each in the
order configured; the first that matches names the endpoint, and only when none does is
the path folded (the query string is never part of a folded name)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from diffsvc.errors import DiffsvcError

_UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
_HEX = r"[0-9a-fA-F]{16,}"
# name -> (what a whole segment must match, what it becomes, a kept suffix group or None)
BUILTIN_FOLDS: dict[str, tuple[str, str, str | None]] = {
    "numeric": (r"\d+", "{id}", None),
    "uuid": (_UUID, "{id}", None),
    "hex": (_HEX, "{id}", None),
    "id-extension": (rf"(?:\d+|{_UUID}|{_HEX})(?P<keep>\.[A-Za-z][A-Za-z0-9]{{0,7}})", "{id}",
                     "keep"),
    "slug-id": (r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*[-_]\d+", "{slug}", None),
    "token": (r"(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{24,}", "{token}", None),
}
DEFAULT_FOLDS = tuple(BUILTIN_FOLDS)
SEGMENTS_KEPT = 4096  # folded segments remembered per Folder (see Folder._seen)


class FoldError(DiffsvcError):
    """An `endpoints.fold` entry that is neither a built-in name nor {match, as}."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


@dataclass(frozen=True, slots=True)
class Folder:
    """The fold rules, as one regex tried once per path segment (first rule that matches
    the whole segment wins)."""

    regex: re.Pattern[str]
    into: tuple[tuple[str, str | None], ...]  # per rule: replacement, kept group
    # segment -> folded: the literal segments of a service's paths are few and come back in
    # every request, and the regex costs ~0.4 µs on a segment it does not fold. Bounded:
    # once full, further segments are folded every time (ids fill it only until then).
    _seen: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def compile(cls, entries: Iterable[str | Mapping[str, Any]] = DEFAULT_FOLDS) -> Folder:
        alternatives, into = [], []
        for i, entry in enumerate(entries):
            if isinstance(entry, str) and entry in BUILTIN_FOLDS:
                pattern, replacement, keep = BUILTIN_FOLDS[entry]
            elif isinstance(entry, Mapping) and set(entry) == {"match", "as"}:
                pattern, replacement, keep = str(entry["match"]), str(entry["as"]), None
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise FoldError(f"[{i}].match", f"not a regular expression ({exc})") from None
            else:
                raise FoldError(f"[{i}]", f"expected one of {', '.join(BUILTIN_FOLDS)} or "
                                "{match: REGEX, as: '{name}'}")
            if keep is not None:
                pattern = pattern.replace(f"(?P<{keep}>", f"(?P<k{i}>")
            alternatives.append(f"(?P<f{i}>{pattern})")
            into.append((replacement, None if keep is None else f"k{i}"))
        regex = re.compile("|".join(alternatives) or r"(?!)")
        return cls(regex, tuple(into))

    def segment(self, seg: str) -> str:
        m = self.regex.fullmatch(seg)
        if m is None or m.lastgroup is None:
            return seg
        replacement, keep = self.into[int(m.lastgroup[1:])]
        return replacement + ((m.group(keep) or "") if keep else "")

    def path(self, path: str) -> str:
        seen, out = self._seen, []
        for seg in path.split("/"):
            folded = seen.get(seg)
            if folded is None:
                folded = self.segment(seg) if seg else seg
                if len(seen) < SEGMENTS_KEPT:
                    seen[seg] = folded
            out.append(folded)
        return "/".join(out)


DEFAULT_FOLDER = Folder.compile()


def fold_path(path: str, folder: Folder = DEFAULT_FOLDER) -> str:
    return folder.path(path)


@dataclass(frozen=True, slots=True)
class RoutePattern:
    method: str
    regex: re.Pattern[str]
    name: str
    # `?_shape=array` -> (("_shape", "array"),); `?_shape` or `?_shape={s}`: any value
    query: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def compile(cls, match: str, name: str) -> RoutePattern:
        method, _, target = match.partition(" ")
        template, _, query = target.partition("?")
        parts = re.split(r"(\{[^/{}]+\})", template)
        body = "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p)
                       for p in parts)
        conditions = []
        for item in filter(None, query.split("&")):
            key, eq, value = item.partition("=")
            wild = not eq or (value.startswith("{") and value.endswith("}"))
            conditions.append((key, None if wild else value))
        return cls(method, re.compile(body + r"/?\Z"), name, tuple(conditions))

    def matches(self, method: str, path: str, query: str = "") -> bool:
        if not ((self.method in ("*", "ANY") or self.method == method)
                and self.regex.match(path)):
            return False
        if not self.query:
            return True
        given = parse_qs(query, keep_blank_values=True)
        return all(key in given and (value is None or value in given[key])
                   for key, value in self.query)


def by_precedence(routes: Iterable[RoutePattern]) -> tuple[RoutePattern, ...]:
    """Routes with query conditions first, then the others, each in configured order."""
    return tuple(sorted(routes, key=lambda route: not route.query))


def endpoint_name(method: str, path: str, routes: tuple[RoutePattern, ...] = (),
                  query: str = "", folder: Folder = DEFAULT_FOLDER) -> str:
    """The endpoint of a request; `routes` in precedence order (see `by_precedence`)."""
    for route in routes:
        if route.matches(method, path, query):
            return route.name
    return f"{method} {folder.path(path)}"
