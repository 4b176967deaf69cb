"""Value parsers of the settings: each takes (key, raw value) and returns the typed value, or
raises ConfigError naming the key."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import yaml

from diffsvc.core import jsonpath
from diffsvc.core.endpoints import Folder, FoldError
from diffsvc.core.traffic import parse_method_paths, parse_sampling_key, parse_shadow_headers
from diffsvc.errors import ConfigError

__all__ = ["parse_method_paths", "parse_sampling_key", "parse_shadow_headers"]

ENV_PREFIX = "DIFFSVC_"

Parser = Callable[[str, Any], Any]


# ---- value parsers: each takes (key, raw value) and returns the typed value ----------------

def parse_str(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int, float)):
        raise ConfigError(key, "expected a string", value)
    return str(value)


def parse_file(key: str, value: Any) -> str | None:
    """The path of a file that exists and can be read."""
    path = parse_str(key, value)
    if path is not None and not (os.path.isfile(path) and os.access(path, os.R_OK)):
        raise ConfigError(key, "no readable file at this path", path)
    return path


def parse_http_url(key: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = parse_str(key, value)
    assert text is not None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(key, "must be an http:// or https:// URL", value)
    if not parts.hostname:
        raise ConfigError(key, "URL has no host", value)
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ConfigError(key, f"bad port: {exc}", value) from None
    if parts.query or parts.fragment:
        raise ConfigError(key, "an upstream URL takes no query or fragment", value)
    return text.rstrip("/")


def parse_redis_url(key: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = parse_str(key, value)
    assert text is not None
    scheme = urlsplit(text).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(key, "must be a redis://, rediss:// or unix:// URL", value)
    return text


def parse_listen(key: str, value: Any) -> str:
    text = parse_str(key, value)
    match = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]*):(\d{1,5})", text or "")
    if not match or int(match.group(2)) > 65535:
        raise ConfigError(key, "expected HOST:PORT, e.g. 127.0.0.1:8080", value)
    return text or ""


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback IP: a listener only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_token(token_key: str, token: str | None, listen_key: str, listen: str) -> None:
    """Refuse to listen beyond loopback without a token (ConfigError naming `token_key`):
    anyone who can reach the port could read the report or inject exchanges."""
    host, _ = split_listen(listen)
    if not token and not is_loopback(host):
        env = ENV_PREFIX + token_key.upper().replace(".", "_")
        raise ConfigError(token_key, f"is required when {listen_key} binds to a non-loopback "
                                     f"address ({host}); set {token_key} ({env}) or listen on "
                                     f"127.0.0.1", listen)


def parse_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(key, "expected true or false", value)


def _number(key: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a {kind.__name__}", value)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(key, f"expected a {kind.__name__}", value) from None


def ranged(kind: type, low: float | None = None, high: float | None = None) -> Parser:
    def parse(key: str, value: Any) -> Any:
        number = _number(key, value, kind)
        if number != number:  # NaN compares false with every bound
            raise ConfigError(key, "must be a number, not NaN", value)
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(key, f"must be {bounds}", value)
        return number

    return parse


_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(key: str, value: Any) -> float:
    """Seconds, from a number or a string such as 250ms, 30s, 15m, 24h, 7d."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", str(value))
        if not match:
            raise ConfigError(key, "expected a duration such as 500ms, 30s, 15m, 24h", value)
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ConfigError(key, "must be greater than zero", value)
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest way parse_duration reads back: 86400 -> 24h, 300 -> 5m, 0.05 -> 50ms."""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds * 1000:g}ms"


def _yaml_text(key: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(key, f"not valid YAML: {exc}") from None
    return value


def parse_ignore(key: str, value: Any) -> dict[str, list[str]]:
    value = _yaml_text(key, value) or {}
    if not isinstance(value, dict):
        raise ConfigError(key, "expected a mapping with 'fields' and/or 'headers'", value)
    unknown = set(value) - {"fields", "headers"}
    if unknown:
        raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown key (expected fields, headers)")
    out: dict[str, list[str]] = {}
    for sub in ("fields", "headers"):
        items = value.get(sub) or []
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{key}.{sub}", "expected a list of strings", items)
        out[sub] = list(items)
    return out


def parse_str_list(key: str, value: Any) -> list[str]:
    """A list of strings, from YAML or a comma-separated string (environment, flags)."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, "expected a list of strings", value)
    return list(value)


def parse_json_paths(key: str, value: Any) -> list[str]:
    paths = parse_str_list(key, value)


    for i, path in enumerate(paths):
        jsonpath.parse(path, rule=f"{key}[{i}]")
    return paths


def parse_rule_paths(key: str, value: Any) -> list[str]:
    """A list of JSONPaths (`ignore_order`, `only`); checked when the rules are compiled."""
    value = _yaml_text(key, value) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, "expected a list of JSONPaths", value)
    return list(value)


def parse_tolerance(key: str, value: Any) -> list[dict[str, Any]]:
    """Numeric tolerance: {abs, rel} for every number, or [{path, abs, rel}, ...]."""
    value = _yaml_text(key, value) or []
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise ConfigError(key, "expected {abs, rel} or a list of {path, abs, rel}", value)
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if isinstance(value, list) else key
        if not isinstance(item, dict):
            raise ConfigError(where, "expected {path, abs, rel}", item)
        unknown = set(item) - {"path", "abs", "rel"}
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}", "unknown key (expected path, abs, rel)")
        entry: dict[str, Any] = {"path": parse_str(f"{where}.path", item.get("path", "$..*"))}
        for bound in ("abs", "rel"):
            entry[bound] = ranged(float, 0)(f"{where}.{bound}", item.get(bound, 0.0))
        out.append(entry)
    return out


def parse_webhook_url(key: str, value: Any) -> str | None:
    """An http(s) URL to POST to; unlike an upstream URL it may carry a query (tokens)."""
    if value is None or value == "":
        return None
    text = parse_str(key, value) or ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, "must be an http:// or https:// URL with a host", value)
    return text


def one_of(*choices: str, expected: str = "") -> Parser:
    """A parser accepting one of `choices`; `expected` words the error (default: the list)."""

    def parse(key: str, value: Any) -> str:
        text = parse_str(key, value)
        if text not in choices:
            raise ConfigError(key, "expected " + (expected or " or ".join(choices)), value)
        return text

    return parse


ROUTE_KEYS = {"match", "name", "ignore", "sample_rate", "ignore_order", "tolerance", "only",
              "shadow_headers"}


def parse_routes(key: str, value: Any) -> list[dict[str, Any]]:
    value = _yaml_text(key, value) or []
    if not isinstance(value, list):
        raise ConfigError(key, "expected a list of routes", value)
    routes = []
    for i, route in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(route, dict):
            raise ConfigError(where, "expected a mapping with 'match'", route)
        unknown = set(route) - ROUTE_KEYS
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}",
                              f"unknown key (expected one of {', '.join(sorted(ROUTE_KEYS))})")
        match = route.get("match")
        if not isinstance(match, str) or not re.fullmatch(r"[A-Z]+ /\S*", match):
            raise ConfigError(f"{where}.match", "expected 'METHOD /path/{param}'", match)
        routes.append({
            "match": match,
            "name": parse_str(f"{where}.name", route.get("name")) or match,
            "ignore": parse_ignore(f"{where}.ignore", route.get("ignore")),
            "sample_rate": ranged(float, 0, 1)(f"{where}.sample_rate", route.get("sample_rate", 1.0)),
            "ignore_order": parse_rule_paths(f"{where}.ignore_order", route.get("ignore_order")),
            "tolerance": parse_tolerance(f"{where}.tolerance", route.get("tolerance")),
            "only": parse_rule_paths(f"{where}.only", route.get("only")),
            "shadow_headers": parse_shadow_headers(f"{where}.shadow_headers",
                                                   route.get("shadow_headers")),
        })
    return routes




def parse_folds(key: str, value: Any) -> list[Any]:
    """`endpoints.fold`: built-in fold names and {match: REGEX, as: NAME} entries, in order;
    a comma-separated string of names from the environment or a flag."""
    value = _yaml_text(key, value)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ConfigError(key, "expected a list of fold rules", value)
    try:
        Folder.compile(value)
    except FoldError as exc:
        raise ConfigError(key + exc.where, exc.reason, value) from None
    return value
