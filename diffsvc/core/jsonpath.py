"""The one path syntax of diffsvc: a small JSONPath subset, parsed once and compiled.

Supported: `$`, `.name`, `['name']`, `[n]`, `[*]`, `.*`, and `..name` / `..[*]` (recursive).
Concrete paths (a tuple of keys and indices) render back to the same syntax, with indices
folded to `[*]` for aggregates, so a path shown in the report can be pasted into a rule."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from diffsvc.errors import RuleError

Key = str | int
Concrete = tuple[Key, ...]

_NAME = re.compile(r"[A-Za-z_$@\-][A-Za-z0-9_$@\-]*")
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ANY = object()  # wildcard step
HEADER = "header."  # a header's path in reports and rules: header.<name>, name lower-cased


def ignore_section(paths: Iterable[str]) -> dict[str, list[str]]:
    """Report paths as a config `ignore:` section: JSONPaths under `fields`, `header.<name>`
    under `headers` (an empty list is left out)."""
    fields, headers = [], []
    for p in paths:
        if p.lower().startswith(HEADER):
            headers.append(p[len(HEADER):].lower())
        else:
            fields.append(p)
    return {k: v for k, v in (("fields", fields), ("headers", headers)) if v}


@dataclass(frozen=True, slots=True)
class Step:
    key: Any  # str, int, or ANY
    recursive: bool = False

    def accepts(self, key: Key) -> bool:
        if self.key is ANY:
            return True
        return self.key == key and type(self.key) is type(key)


@dataclass(frozen=True, slots=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    def matches(self, path: Concrete) -> bool:
        """True when this pattern matches the concrete path exactly (not a prefix)."""
        return _match(self.steps, path)

    def matches_prefix_of(self, path: Concrete) -> bool:
        """True when the path lies at or below a node this pattern matches."""
        return any(_match(self.steps, path[:n]) for n in range(len(path) + 1))

    def may_lead_to(self, path: Concrete) -> bool:
        """True when some node at or below `path` could match (used to prune for `only`)."""
        return _prefix(self.steps, path)

    def remove_from(self, tree: Any) -> None:
        """Delete, in place, every node of a parsed JSON tree this pattern matches."""
        _remove(tree, self.steps)

    def remover(self) -> Remover:
        """`remove_from` compiled for this path: named keys, indices and `[*]` become
        closures that look their key up directly; a recursive step falls back to the walk."""
        return _compile_remover(self.steps)


Remover = Callable[[Any], None]
_CONTAINERS = (dict, list)


def _compile_remover(steps: tuple[Step, ...]) -> Remover:
    """As `_remove(node, steps)`, step by step, without re-reading the steps per node."""
    if not steps:
        return _noop
    step, rest = steps[0], steps[1:]
    if step.recursive:
        return lambda node: _remove(node, steps)
    sub = _compile_remover(rest) if rest else None
    key = step.key
    if key is ANY:
        if sub is None:
            return _clear

        def each(node: Any) -> None:
            children = node.values() if isinstance(node, dict) else node
            if isinstance(node, _CONTAINERS):
                for child in children:
                    if isinstance(child, _CONTAINERS):
                        sub(child)
        return each
    if type(key) is str:
        if sub is None:
            def drop_key(node: Any) -> None:
                if isinstance(node, dict) and key in node:
                    del node[key]
            return drop_key

        def into_key(node: Any) -> None:
            if isinstance(node, dict) and key in node:
                sub(node[key])
        return into_key
    if sub is None:
        def drop_index(node: Any) -> None:
            if isinstance(node, list) and 0 <= key < len(node):
                del node[key]
        return drop_index

    def into_index(node: Any) -> None:
        if isinstance(node, list) and 0 <= key < len(node):
            sub(node[key])
    return into_index


def _noop(node: Any) -> None:
    return None


def _clear(node: Any) -> None:
    if isinstance(node, _CONTAINERS):
        node.clear()


def parse(text: str, *, rule: str = "rule") -> JsonPath:
    """Parse a JSONPath; a malformed one raises RuleError naming the rule and the position."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise RuleError(rule, "a field path must be JSONPath starting with '$'", text)
    steps: list[Step] = []
    i, n = 1, len(text)
    while i < n:
        recursive = False
        if text.startswith("..", i):
            recursive, i = True, i + 2
            if i < n and text[i] == "[":
                pass
            else:
                i, key = _name_at(text, i, rule)
                steps.append(Step(key, True))
                continue
        elif text[i] == ".":
            i, key = _name_at(text, i + 1, rule)
            steps.append(Step(key))
            continue
        if i < n and text[i] == "[":
            end = text.find("]", i)
            if end < 0:
                raise RuleError(rule, f"unclosed '[' at position {i}", text)
            steps.append(Step(_bracket(text[i + 1 : end], rule, text), recursive))
            i = end + 1
            continue
        raise RuleError(rule, f"unexpected {text[i]!r} at position {i}", text)
    return JsonPath(text, tuple(steps))


def _name_at(text: str, i: int, rule: str) -> tuple[int, Any]:
    if text.startswith("*", i):
        return i + 1, ANY
    m = _NAME.match(text, i)
    if not m:
        raise RuleError(rule, f"expected a field name at position {i}", text)
    return m.end(), m.group(0)


def _bracket(inner: str, rule: str, text: str) -> Any:
    inner = inner.strip()
    if inner == "*":
        return ANY
    if re.fullmatch(r"-?\d+", inner):
        return int(inner)
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return inner[1:-1]
    raise RuleError(rule, f"bad bracket [{inner}]: expected [*], [n] or ['name']", text)


def _match(steps: tuple[Step, ...], path: Concrete) -> bool:
    if not steps:
        return not path
    step, rest = steps[0], steps[1:]
    if step.recursive:
        return any(step.accepts(path[j]) and _match(rest, path[j + 1 :]) for j in range(len(path)))
    return bool(path) and step.accepts(path[0]) and _match(rest, path[1:])


def _prefix(steps: tuple[Step, ...], path: Concrete) -> bool:
    if not path:
        return True
    if not steps:
        return False
    step, rest = steps[0], steps[1:]
    if step.recursive and _prefix(steps, path[1:]):  # path[0] is an intermediate node
        return True
    return step.accepts(path[0]) and _prefix(rest, path[1:])


def _children(node: Any) -> Iterator[tuple[Key, Any]]:
    if isinstance(node, dict):
        yield from list(node.items())
    elif isinstance(node, list):
        yield from list(enumerate(node))


def _remove(node: Any, steps: tuple[Step, ...]) -> None:
    if not steps or not isinstance(node, (dict, list)):
        return
    step, rest = steps[0], steps[1:]
    if not step.recursive and step.key is not ANY:  # one named key or index: look it up
        name: Any = step.key
        container: Any = node
        if (type(name) is str and isinstance(node, dict) and name in node) or (
                type(name) is int and isinstance(node, list) and 0 <= name < len(node)):
            if rest:
                _remove(container[name], rest)
            else:
                del container[name]
        return
    if not step.recursive:  # [*] or .*: every child of this node
        if not rest:
            node.clear()
            return
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                _remove(child, rest)
        return
    doomed: list[Key] = []
    for key, child in _children(node):
        if step.accepts(key):
            if rest:
                _remove(child, rest)
            else:
                doomed.append(key)
        if step.recursive and isinstance(child, (dict, list)):
            _remove(child, steps)
    for key in sorted(doomed, key=lambda k: (isinstance(k, int), k), reverse=True):
        del node[key]  # type: ignore[arg-type]


def render(path: Concrete, *, fold: bool = True) -> str:
    """A concrete path as JSONPath; `fold` turns indices into [*] (the aggregate form)."""
    out = ["$"]
    for key in path:
        if isinstance(key, int):
            out.append("[*]" if fold else f"[{key}]")
        elif _SAFE_NAME.match(key):
            out.append(f".{key}")
        else:
            out.append("['" + key.replace("'", "\\'") + "']")
    return "".join(out)
