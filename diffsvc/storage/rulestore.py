"""Ignore rules added from the report UI, kept in Redis (`keys.RULES`, one JSON per rule) with
a version counter (`keys.RULES_VERSION`) that workers check once per batch, and exportable as
the YAML a config file takes (`ignore:` for all endpoints, `routes:` for one)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, cast

import orjson
import yaml
from redis import Redis

from diffsvc.core import jsonpath
from diffsvc.errors import RuleError
from diffsvc.storage import keys

ALL = "*"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    path: str          # a JSONPath, as shown in the report
    endpoint: str = ALL  # an endpoint name, or '*' for every endpoint
    note: str = ""
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # an HTTP header name (RFC 9110)


def validate(path: Any, endpoint: Any = ALL, note: Any = "") -> tuple[str, str, str]:
    """Checked (path, endpoint, note); RuleError names what was wrong. The path is a JSONPath
    or `header.<name>`, as the report shows them."""
    if not isinstance(path, str) or not path.strip():
        raise RuleError("path", "expected a JSONPath such as $.items[*].price, or "
                                "header.<name>", path)
    path = path.strip()
    if path.lower().startswith(jsonpath.HEADER):
        if not _HEADER_NAME.match(path[len(jsonpath.HEADER):]):
            raise RuleError("path", "expected a header name after 'header.'", path)
        path = path.lower()
    else:
        jsonpath.parse(path, rule="path")
    if endpoint in (None, ""):
        endpoint = ALL
    if not isinstance(endpoint, str) or (endpoint != ALL and " /" not in endpoint):
        raise RuleError("endpoint", "expected an endpoint name such as 'GET /api/users/{id}' "
                                    "or '*'", endpoint)
    if not isinstance(note, str):
        raise RuleError("note", "expected a string", note)
    return path, endpoint, note[:200]


def add(r: Redis, path: Any, endpoint: Any = ALL, note: Any = "") -> Rule:
    """Add a rule (an existing identical rule is returned as is) and bump the version."""
    path, endpoint, note = validate(path, endpoint, note)
    for rule in list_rules(r):
        if rule.path == path and rule.endpoint == endpoint:
            return rule
    rule = Rule(uuid.uuid4().hex[:12], path, endpoint, note, round(time.time(), 3))
    with r.pipeline() as pipe:
        pipe.hset(keys.RULES, rule.id, orjson.dumps(rule.to_dict()))
        pipe.incr(keys.RULES_VERSION)
        pipe.execute()
    return rule


def delete(r: Redis, rule_id: str) -> bool:
    with r.pipeline() as pipe:
        pipe.hdel(keys.RULES, rule_id)
        pipe.incr(keys.RULES_VERSION)
        removed, _ = pipe.execute()
    return bool(removed)


def list_rules(r: Redis) -> list[Rule]:
    raw = cast("dict[bytes, bytes]", r.hgetall(keys.RULES))
    rules = [Rule(**orjson.loads(v)) for v in raw.values()]
    return sorted(rules, key=lambda x: (x.created_at, x.id))


def version(r: Redis) -> int:
    return int(cast("bytes | None", r.get(keys.RULES_VERSION)) or 0)


def extra(rules: list[Rule]) -> dict[str, list[str]]:
    """The rules as `RuleSet.with_extra` takes them: endpoint (or '*') -> JSONPaths."""
    out: dict[str, list[str]] = {}
    for rule in rules:
        out.setdefault(rule.endpoint, []).append(rule.path)
    return out


def to_yaml(rules: list[Rule]) -> str:
    """The rules as config YAML: global ones under `ignore`, the rest as `routes`; JSONPaths
    go to `fields`, `header.<name>` rules to `headers`."""
    by_endpoint = extra(rules)
    doc: dict[str, Any] = {}
    if ALL in by_endpoint:
        doc["ignore"] = jsonpath.ignore_section(by_endpoint.pop(ALL))
    if by_endpoint:
        doc["routes"] = [{"match": ep, "ignore": jsonpath.ignore_section(paths)}
                         for ep, paths in sorted(by_endpoint.items())]
    header = "# ignore rules added in the diffsvc report UI; merge into your config file\n"
    return header + (yaml.safe_dump(doc, sort_keys=False) if doc else "{}\n")

