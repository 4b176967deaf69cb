"""Settings, declared once (type, default, help), read from one YAML file, `DIFFSVC_*`
environment variables and CLI flags, in that order, and checked at start-up.

This module is the only reader of the environment. A bad value raises ConfigError naming
the key, before anything listens."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .errors import ConfigError
from .traffic import parse_method_paths, parse_sampling_key, parse_shadow_headers

ENV_PREFIX = "DIFFSVC_"

Parser = Callable[[str, Any], Any]


# ---- value parsers: each takes (key, raw value) and returns the typed value ----------------

def parse_str(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int, float)):
        raise ConfigError(key, "expected a string", value)
    return str(value)


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
    from . import jsonpath

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


# ---- the settings, declared once ----------------------------------------------------------

def setting(default: Any, help: str, parse: Parser, *, key: str | None = None,
            flag: bool = True, metavar: str | None = None) -> Any:
    meta = {"help": help, "parse": parse, "key": key, "flag": flag, "metavar": metavar}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Config:
    listen: str = setting("127.0.0.1:8080", "gateway address, HOST:PORT", parse_listen)
    primary: str | None = setting(None, "production upstream URL (its answers go to clients)",
                                  parse_http_url, metavar="URL")
    candidate: str | None = setting(None, "candidate upstream URL (shadow copy)", parse_http_url,
                                    metavar="URL")
    secondary: str | None = setting(None, "second production instance URL, to measure noise",
                                    parse_http_url, metavar="URL")
    redis_url: str | None = setting(None, "Redis URL; unset: `up`/`demo` start an embedded redis-server",
                                    parse_redis_url, metavar="URL")
    sample_rate: float = setting(1.0, "share of requests mirrored, 0 to 1", ranged(float, 0, 1))
    mode: str = setting("inline", "gateway mode: inline (in front of primary) or target (the "
                        "destination of an Istio/Envoy/nginx mirror)",
                        one_of("inline", "target"))
    sampling_key: str | None = setting(None, "consistent sampling key: header:NAME, cookie:NAME or "
                                       "query:NAME (one key's requests: all mirrored or none)",
                                       parse_sampling_key, key="sampling.key", metavar="SOURCE:NAME")
    shadow_rate_limit: float = setting(0.0, "most shadow requests per second (0: no limit)",
                                       ranged(float, 0), metavar="RPS")
    allow: list[str] = setting([], "mirror only requests matching these 'METHOD /path/glob' entries",
                               parse_method_paths, metavar="'METHOD /GLOB',...")
    deny: list[str] = setting([], "never mirror requests matching these 'METHOD /path/glob' entries",
                              parse_method_paths, metavar="'METHOD /GLOB',...")
    allow_side_effects: bool = setting(False, "mirror every method, not only GET, HEAD, OPTIONS",
                                       parse_bool)
    max_inflight: int = setting(1000, "shadow exchanges in flight; beyond it they are dropped and counted",
                                ranged(int, 1))
    shadow_timeout: float = setting(5.0, "timeout of a shadow call (e.g. 500ms, 5s)", parse_duration)
    primary_timeout: float = setting(30.0, "timeout of the call to primary", parse_duration)
    retention: float = setting(86400.0, "TTL of stored exchanges and comparisons (e.g. 24h)",
                               parse_duration)
    max_body: int = setting(10 * 1024 * 1024, "largest body (bytes, after decompression) compared",
                            ranged(int, 1024))
    batch_size: int = setting(200, "exchanges per Redis write and per comparison job", ranged(int, 1))
    flush_interval: float = setting(0.05, "longest wait before captured exchanges are written",
                                    parse_duration)
    workers: int = setting(1, "worker processes started by `up` and `demo`", ranged(int, 1, 64))
    processes: int = setting(1, "gateway processes sharing the listen port (SO_REUSEPORT)",
                             ranged(int, 1, 64))
    ignore: dict[str, list[str]] = setting({"fields": [], "headers": []},
                                           "global ignore rules: {fields: [JSONPath], headers: [name]}",
                                           parse_ignore, flag=False)
    routes: list[dict[str, Any]] = setting([], "routes: [{match: 'GET /users/{id}', name, ignore}]",
                                           parse_routes, flag=False)
    ignore_order: list[str] = setting([], "JSONPaths of arrays compared in any order (sets)",
                                      parse_rule_paths, flag=False)
    tolerance: list[dict[str, Any]] = setting([], "numeric tolerance: {abs, rel} or "
                                              "[{path: JSONPath, abs, rel}]", parse_tolerance,
                                              flag=False)
    only: list[str] = setting([], "compare only these JSONPaths (and `header.<name>`)",
                              parse_rule_paths, flag=False)
    noise_min_relative: float = setting(0.25, "a field is a regression only when its raw rate "
                                        "exceeds its noise rate by this share", ranged(float, 0),
                                        key="noise.min_relative")
    noise_min_absolute: float = setting(0.01, "... and by at least this much (rate points)",
                                        ranged(float, 0, 1), key="noise.min_absolute")
    report_listen: str = setting("127.0.0.1:8081", "report server address, HOST:PORT", parse_listen,
                                 key="report.listen")
    report_token: str | None = setting(None, "bearer token required by the report server",
                                       parse_str, key="report.token", metavar="TOKEN")
    metrics_top_paths: int = setting(10, "fields per endpoint exported as metric labels; the rest "
                                     "are summed as path=\"other\"", ranged(int, 1, 1000),
                                     key="metrics.top_paths", metavar="N")
    notify_webhook_url: str | None = setting(None, "URL the built-in notifier POSTs mismatch alerts "
                                             "(and their resolution) to; unset: no notifier",
                                             parse_webhook_url, key="notify.webhook_url",
                                             metavar="URL")
    notify_threshold: float = setting(0.05, "mismatch rate above which an endpoint's alert fires",
                                      ranged(float, 0, 1), key="notify.threshold", metavar="RATE")
    notify_window: float = setting(300.0, "window the notifier's mismatch rate is taken over "
                                   "(whole minutes, e.g. 5m)", parse_duration, key="notify.window")
    notify_min_pairs: int = setting(50, "pairs an endpoint needs in the window before it can "
                                    "alert or resolve", ranged(int, 1), key="notify.min_pairs",
                                    metavar="N")
    notify_interval: float = setting(30.0, "how often the notifier evaluates", parse_duration,
                                     key="notify.interval")
    redact_headers: list[str] = setting([], "headers redacted before storing, besides Authorization, "
                                        "Cookie, Set-Cookie, Proxy-Authorization", parse_str_list,
                                        key="redact.headers", metavar="NAME,...")
    redact_query: list[str] = setting(
        ["access_token", "id_token", "refresh_token", "token", "api_key", "apikey", "key",
         "password", "passwd", "secret", "client_secret", "signature", "sig", "auth"],
        "query parameters whose values are redacted before storing (names, case-insensitive)",
        parse_str_list, key="redact.query", metavar="NAME,...")
    redact_fields: list[str] = setting([], "JSONPaths redacted in JSON bodies before storing",
                                       parse_json_paths, key="redact.fields", metavar="JSONPATH,...")
    redact_key: str | None = setting(None, "HMAC key of redaction (unset: random per process)",
                                     parse_str, key="redact.key", metavar="KEY")
    redact_mode: str = setting("hmac", "redaction: hmac (keyed hash) or mask ([redacted])",
                               one_of("hmac", "mask", expected="hmac (keyed hash, equal "
                                      "values stay equal) or mask"), key="redact.mode")
    mirror_max_body: int = setting(1024 * 1024, "largest request body (bytes) mirrored; larger ones "
                                   "go to primary only, counted", ranged(int, 0))
    max_header_size: int = setting(8190, "longest request line / header field the gateway accepts",
                                   ranged(int, 256))

    def require(self, *keys: str) -> None:
        """Fail, naming the key, when a setting a command needs is missing."""
        for key in keys:
            if getattr(self, key.replace(".", "_")) is None:
                raise ConfigError(key, f"is required (set it in the config file, --{key.replace('_', '-')} "
                                       f"or {env_name(key)})")


def setting_key(f: Any) -> str:
    return f.metadata.get("key") or f.name


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper().replace(".", "_")


def flag_name(key: str) -> str:
    return "--" + key.replace(".", "-").replace("_", "-")


SETTINGS = {setting_key(f): f for f in fields(Config)}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and f"{key}." in {s[: len(key) + 1] for s in SETTINGS}:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("config", f"cannot read file: {exc.strerror}", str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError("config", f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must hold a mapping of settings")
    return _flatten(data)


def load(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Config:
    """Build the Config from file < environment < overrides (CLI flags), all checked."""
    raw: dict[str, Any] = {}
    env = os.environ if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    if path is not None:
        raw.update(read_file(path))
    for key in SETTINGS:
        if env_name(key) in env:
            raw[key] = env[env_name(key)]
    for key, value in (overrides or {}).items():
        if value is not None:
            raw[key] = value
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        raise ConfigError(unknown[0], "unknown key (see `diffsvc --help` for the settings)")
    values = {SETTINGS[k].name: SETTINGS[k].metadata["parse"](k, v) for k, v in raw.items()}
    cfg = Config(**values)
    from .rules import RuleSet  # validates every rule now, naming the bad one

    RuleSet.from_config(cfg)
    return cfg


def to_mapping(cfg: Config) -> dict[str, Any]:
    """The config as the YAML file that would produce it (for child processes)."""
    out: dict[str, Any] = {}
    for key, f in SETTINGS.items():
        head, _, tail = key.partition(".")
        value = getattr(cfg, f.name)
        if tail:
            out.setdefault(head, {})[tail] = value
        else:
            out[key] = value
    return out


def write_file(cfg: Config, path: str | os.PathLike[str]) -> None:
    Path(path).write_text(yaml.safe_dump(to_mapping(cfg), sort_keys=False), encoding="utf-8")


# ---- CLI flags, generated from the settings --------------------------------------------------

def add_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML config file (or DIFFSVC_CONFIG)")
    group = parser.add_argument_group("settings (also DIFFSVC_<KEY> and the config file)")
    for key, f in SETTINGS.items():
        if not f.metadata["flag"] or (only is not None and key not in only):
            continue
        default = f.default if f.default is not MISSING else "[]"
        kwargs: dict[str, Any] = {"dest": f"setting:{key}", "default": None,
                                  "help": f"{f.metadata['help']} (default: {default})"}
        if f.metadata["parse"] is parse_bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = f.metadata["metavar"] or key.split(".")[-1].upper()
        group.add_argument(flag_name(key), **kwargs)
    if only is None or "ignore" in only:
        group.add_argument("--ignore-field", action="append", metavar="JSONPATH", default=None,
                           help="add a JSONPath to ignore.fields (repeatable)")
        group.add_argument("--ignore-header", action="append", metavar="NAME", default=None,
                           help="add a header name to ignore.headers (repeatable)")


def from_args(args: argparse.Namespace) -> Config:
    overrides = {k.split(":", 1)[1]: v for k, v in vars(args).items() if k.startswith("setting:")}
    cfg = load(getattr(args, "config", None), overrides=overrides)
    extra_fields = getattr(args, "ignore_field", None) or []
    extra_headers = getattr(args, "ignore_header", None) or []
    if extra_fields or extra_headers:
        ignore = {"fields": cfg.ignore["fields"] + extra_fields,
                  "headers": cfg.ignore["headers"] + extra_headers}
        cfg = replace(cfg, ignore=parse_ignore("ignore", ignore))
        from .rules import RuleSet

        RuleSet.from_config(cfg)
    return cfg
