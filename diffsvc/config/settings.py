"""Settings, declared once (type, default, help): the Config dataclass. `load` reads them from
one YAML file, `DIFFSVC_*` environment variables and CLI flags, in that order."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from diffsvc.config.parse import (
    ENV_PREFIX,
    Parser,
    format_duration,
    one_of,
    parse_bool,
    parse_duration,
    parse_file,
    parse_folds,
    parse_http_url,
    parse_ignore,
    parse_json_paths,
    parse_listen,
    parse_method_paths,
    parse_redis_url,
    parse_routes,
    parse_rule_paths,
    parse_sampling_key,
    parse_str,
    parse_str_list,
    parse_tolerance,
    parse_webhook_url,
    ranged,
)
from diffsvc.core.endpoints import DEFAULT_FOLDS
from diffsvc.errors import ConfigError

# ---- the commands that read settings --------------------------------------------------------
# Each setting names the commands that read it (`commands=`); a command gets a flag for every
# setting that names it (`up` and `demo` run gateway, worker and serve, and take all of theirs).
# A new command adds its name here and to the `commands=` of the settings it reads.

GATEWAY, WORKER, SERVE, REPORT, GATE, RULES, REPLAY, DATA = (
    "gateway", "worker", "serve", "report", "gate", "rules", "replay", "data")
COMMANDS = (GATEWAY, WORKER, SERVE, REPORT, GATE, RULES, REPLAY, DATA)
REDIS_USERS = COMMANDS  # every command opens Redis
COMPARERS = (WORKER, REPLAY)  # compare pairs (replay runs the comparisons in burst)
REPORTERS = (REPORT, SERVE, REPLAY, GATE, RULES)  # judge: noise margins, verdict criteria
CAPTURERS = (GATEWAY, REPLAY)  # call the upstreams and store exchanges
LONG_RUNNING = (GATEWAY, WORKER, SERVE)  # log a start line and progress


# ---- the settings, declared once ----------------------------------------------------------

def setting(default: Any, help: str, parse: Parser, *, key: str | None = None,
            flag: bool = True, metavar: str | None = None,
            commands: tuple[str, ...] = ()) -> Any:
    """A Config field: its default, help and parser, the key in the file when it is nested
    (`report.listen`), and the commands that read it (they get a `--flag` for it)."""
    meta = {"help": help, "parse": parse, "key": key, "flag": flag, "metavar": metavar,
            "commands": commands}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Config:
    listen: str = setting("127.0.0.1:8080", "gateway address, HOST:PORT", parse_listen,
                          commands=(GATEWAY,))
    primary: str | None = setting(None, "production upstream URL (its answers go to clients)",
                                  parse_http_url, metavar="URL",
                                  # worker: its origin is a self-reference; serve: curl lines
                                  commands=(*CAPTURERS, WORKER, SERVE))
    candidate: str | None = setting(None, "candidate upstream URL (shadow copy)", parse_http_url,
                                    metavar="URL",
                                    commands=(*CAPTURERS, WORKER))
    secondary: str | None = setting(None, "second production instance URL, to measure noise",
                                    parse_http_url, metavar="URL",
                                    commands=(*CAPTURERS, WORKER))
    redis_url: str | None = setting(None, "Redis URL; unset: `up`/`demo` start an embedded redis-server",
                                    parse_redis_url, metavar="URL",
                                    commands=REDIS_USERS)
    sample_rate: float = setting(1.0, "share of requests mirrored, 0 to 1", ranged(float, 0, 1),
                                 commands=CAPTURERS)
    mode: str = setting("inline", "gateway mode: inline (in front of primary), target (the "
                        "destination of an Istio/Envoy/nginx mirror) or collect (fed exchanges "
                        "with production's answers by Envoy/Istio/nginx)",
                        one_of("inline", "target", "collect"),
                        commands=(GATEWAY,))
    sampling_key: str | None = setting(None, "consistent sampling key: header:NAME, cookie:NAME or "
                                       "query:NAME (one key's requests: all mirrored or none)",
                                       parse_sampling_key, key="sampling.key", metavar="SOURCE:NAME",
                                       commands=CAPTURERS)
    shadow_rate_limit: float = setting(0.0, "most shadow requests per second (0: no limit)",
                                       ranged(float, 0), metavar="RPS",
                                       commands=CAPTURERS)
    allow: list[str] = setting([], "mirror only requests matching these 'METHOD /path/glob' entries",
                               parse_method_paths, metavar="'METHOD /GLOB',...",
                               commands=CAPTURERS)
    deny: list[str] = setting([], "never mirror requests matching these 'METHOD /path/glob' entries",
                              parse_method_paths, metavar="'METHOD /GLOB',...",
                              commands=CAPTURERS)
    allow_side_effects: bool = setting(False, "mirror every method, not only GET, HEAD, OPTIONS",
                                       parse_bool,
                                       commands=CAPTURERS)
    max_inflight: int = setting(1000, "shadow exchanges in flight; beyond it they are dropped and counted",
                                ranged(int, 1),
                                commands=(GATEWAY,))
    shadow_timeout: float = setting(5.0, "timeout of a shadow call (e.g. 500ms, 5s)", parse_duration,
                                    commands=CAPTURERS)
    primary_timeout: float = setting(30.0, "timeout of the call to primary", parse_duration,
                                     commands=(GATEWAY,))
    retention: float = setting(86400.0, "TTL of stored exchanges and comparisons (e.g. 24h)",
                               parse_duration,
                               commands=(GATEWAY, WORKER, REPLAY))
    max_body: int = setting(10 * 1024 * 1024, "largest body (bytes, after decompression) compared",
                            ranged(int, 1024),
                            commands=(GATEWAY, WORKER, SERVE, REPLAY))
    batch_size: int = setting(1000, "exchanges per Redis write and per comparison job",
                              ranged(int, 1), commands=CAPTURERS)
    flush_interval: float = setting(0.05, "longest wait before captured exchanges are written",
                                    parse_duration,
                                    commands=CAPTURERS)
    workers: int = setting(1, "worker processes started by `up` and `demo`", ranged(int, 1, 64),
                           commands=(WORKER,))
    processes: int = setting(1, "gateway processes sharing the listen port (SO_REUSEPORT)",
                             ranged(int, 1, 64),
                             commands=CAPTURERS)
    ignore: dict[str, list[str]] = setting({"fields": [], "headers": []},
                                           "global ignore rules: {fields: [JSONPath], headers: [name]}",
                                           parse_ignore, flag=False,
                                           commands=(GATEWAY, *COMPARERS, SERVE, RULES))
    routes: list[dict[str, Any]] = setting([], "routes: [{match: 'GET /users/{id}', name, ignore}]",
                                           parse_routes, flag=False,
                                           commands=(GATEWAY, *COMPARERS, SERVE, RULES))
    ignore_order: list[str] = setting([], "JSONPaths of arrays compared in any order (sets)",
                                      parse_rule_paths, flag=False,
                                      commands=COMPARERS)
    tolerance: list[dict[str, Any]] = setting([], "numeric tolerance: {abs, rel} or "
                                              "[{path: JSONPath, abs, rel}]", parse_tolerance,
                                              flag=False,
                                              commands=COMPARERS)
    only: list[str] = setting([], "compare only these JSONPaths (and `header.<name>`)",
                              parse_rule_paths, flag=False,
                              commands=COMPARERS)
    noise_min_relative: float = setting(0.25, "a field is a regression only when its raw rate "
                                        "exceeds its noise rate by this share", ranged(float, 0),
                                        key="noise.min_relative",
                                        commands=REPORTERS)
    noise_min_absolute: float = setting(0.01, "... and by at least this much (rate points)",
                                        ranged(float, 0, 1), key="noise.min_absolute",
                                        commands=REPORTERS)
    report_listen: str = setting("127.0.0.1:8081", "report server address, HOST:PORT", parse_listen,
                                 key="report.listen",
                                 commands=(SERVE,))
    report_token: str | None = setting(None, "bearer token required by the report server",
                                       parse_str, key="report.token", metavar="TOKEN",
                                       commands=(SERVE,))
    metrics_top_paths: int = setting(10, "fields per endpoint exported as metric labels; the rest "
                                     "are summed as path=\"other\"", ranged(int, 1, 1000),
                                     key="metrics.top_paths", metavar="N",
                                     commands=(SERVE,))
    notify_webhook_url: str | None = setting(None, "URL the built-in notifier POSTs mismatch alerts "
                                             "(and their resolution) to; unset: no notifier",
                                             parse_webhook_url, key="notify.webhook_url",
                                             metavar="URL",
                                             commands=(SERVE,))
    notify_threshold: float = setting(0.05, "mismatch rate above which an endpoint's alert fires",
                                      ranged(float, 0, 1), key="notify.threshold", metavar="RATE",
                                      commands=(SERVE,))
    notify_window: float = setting(300.0, "window the notifier's mismatch rate is taken over "
                                   "(whole minutes, e.g. 5m)", parse_duration, key="notify.window",
                                   commands=(SERVE,))
    notify_min_pairs: int = setting(50, "pairs an endpoint needs in the window before it can "
                                    "alert or resolve", ranged(int, 1), key="notify.min_pairs",
                                    metavar="N",
                                    commands=(SERVE,))
    notify_interval: float = setting(30.0, "how often the notifier evaluates", parse_duration,
                                     key="notify.interval",
                                     commands=(SERVE,))
    redact_headers: list[str] = setting([], "headers redacted before storing, besides Authorization, "
                                        "Cookie, Set-Cookie, Proxy-Authorization", parse_str_list,
                                        key="redact.headers", metavar="NAME,...",
                                        commands=CAPTURERS)
    redact_query: list[str] = setting(
        ["access_token", "id_token", "refresh_token", "token", "api_key", "apikey", "key",
         "password", "passwd", "secret", "client_secret", "signature", "sig", "auth"],
        "query parameters whose values are redacted before storing (names, case-insensitive)",
        parse_str_list, key="redact.query", metavar="NAME,...",
                                      commands=CAPTURERS)
    redact_fields: list[str] = setting([], "JSONPaths redacted in JSON bodies before storing",
                                       parse_json_paths, key="redact.fields", metavar="JSONPATH,...",
                                       commands=CAPTURERS)
    redact_key: str | None = setting(None, "HMAC key of redaction (unset: random per process)",
                                     parse_str, key="redact.key", metavar="KEY",
                                     commands=CAPTURERS)
    redact_mode: str = setting("hmac", "redaction: hmac (keyed hash) or mask ([redacted])",
                               one_of("hmac", "mask", expected="hmac (keyed hash, equal "
                                      "values stay equal) or mask"), key="redact.mode",
                               commands=CAPTURERS)
    mirror_max_body: int = setting(1024 * 1024, "largest request body (bytes) mirrored; larger ones "
                                   "go to primary only, counted", ranged(int, 0),
                                   commands=(GATEWAY,))
    max_header_size: int = setting(8190, "longest request line / header field the gateway accepts",
                                   ranged(int, 256),
                                   commands=(GATEWAY,))
    # --- issue 13 ---
    self_references: bool = setting(True, "before comparing, each upstream's own origin "
                                     "(scheme://host:port, host:port) in its headers and body "
                                     "becomes a placeholder", parse_bool, commands=COMPARERS)
    forward_host: bool = setting(False, "send the client's Host header unchanged to every "
                                 "upstream (for services that build URLs from it)", parse_bool,
                                 commands=CAPTURERS)
    endpoints_fold: list[Any] = setting(list(DEFAULT_FOLDS), "how path segments fold into "
                                        "endpoint templates: built-in names (" +
                                        ", ".join(DEFAULT_FOLDS) + ") and {match: REGEX, as: "
                                        "'{name}'} entries, first match wins", parse_folds,
                                        key="endpoints.fold", metavar="NAME,...",
                                        commands=(GATEWAY, *COMPARERS, SERVE, RULES))
    # --- issue 16 ---
    collect_token: str | None = setting(None, "shared token a proxy presents to the collector "
                                        "(mode: collect); required beyond loopback", parse_str,
                                        key="collect.token", metavar="TOKEN",
                                        commands=(GATEWAY,))
    # --- issue 14 ---
    log_format: str = setting("text", "log lines: text, or json (one object a line, for log "
                              "shippers)", one_of("text", "json"), key="log.format",
                              commands=LONG_RUNNING)
    log_level: str = setting("info", "least level logged: debug, info, warning or error",
                             one_of("debug", "info", "warning", "error"), key="log.level",
                             commands=LONG_RUNNING)
    log_interval: float = setting(60.0, "how often a long-running process logs its progress",
                                  parse_duration, key="log.interval",
                                  commands=(*LONG_RUNNING, REPLAY))  # replay runs a worker
    tls_ca_file: str | None = setting(None, "PEM file of the CAs upstream certificates are checked "
                                      "against (besides the system's): a private CA",
                                      parse_file, key="tls.ca_file", metavar="FILE",
                                      commands=CAPTURERS)
    tls_verify: bool = setting(True, "check upstream certificates (--no-tls-verify: don't, for "
                               "tests only)", parse_bool, key="tls.verify", commands=CAPTURERS)
    tls_cert_file: str | None = setting(None, "client certificate (PEM) presented to upstreams "
                                        "that require one (mTLS)", parse_file,
                                        key="tls.cert_file", metavar="FILE", commands=CAPTURERS)
    tls_key_file: str | None = setting(None, "its private key (PEM; unset: in tls.cert_file)",
                                       parse_file, key="tls.key_file", metavar="FILE",
                                       commands=CAPTURERS)
    tls_listen_cert_file: str | None = setting(None, "certificate (PEM) the gateway serves "
                                               "HTTPS with; unset: plain HTTP", parse_file,
                                               key="tls.listen_cert_file", metavar="FILE",
                                               commands=(GATEWAY,))
    tls_listen_key_file: str | None = setting(None, "its private key (PEM; unset: in the "
                                              "certificate file)", parse_file,
                                              key="tls.listen_key_file", metavar="FILE",
                                              commands=(GATEWAY,))
    report_tls_cert_file: str | None = setting(None, "certificate (PEM) the report server "
                                               "serves HTTPS with; unset: plain HTTP",
                                               parse_file, key="report.tls_cert_file",
                                               metavar="FILE", commands=(SERVE,))
    report_tls_key_file: str | None = setting(None, "its private key (PEM; unset: in the "
                                              "certificate file)", parse_file,
                                              key="report.tls_key_file", metavar="FILE",
                                              commands=(SERVE,))

    # --- issue 12 ---
    max_error_rate: float = setting(0.01, "candidate error rate (failed calls where primary "
                                    "answered) above which every gate fails", ranged(float, 0, 1),
                                    metavar="RATE", commands=REPORTERS)
    verdict_confidence: float = setting(0.95, "confidence a regression needs: a field's rate must "
                                        "beat the noise baseline at this level (one-sided test)",
                                        ranged(float, 0.5, 0.9999), key="verdict.confidence",
                                        metavar="LEVEL", commands=REPORTERS)
    verdict_min_evidence: int = setting(3, "differences a field needs before it can be a "
                                        "regression", ranged(int, 1), key="verdict.min_evidence",
                                        metavar="N", commands=REPORTERS)
    candidate_version: str | None = setting(None, "the candidate build under test, stamped on "
                                            "every exchange; a new value starts a new build's "
                                            "figures", parse_str, metavar="BUILD",
                                            commands=CAPTURERS)
    version_header: str | None = setting(None, "response header in which the candidate names "
                                         "its build (e.g. X-Build); read on every exchange, "
                                         "before candidate_version", parse_str, metavar="NAME",
                                         commands=(*CAPTURERS, WORKER))
    # --- issue 15 ---
    capture_compress: bool = setting(False, "store exchanges zstd-compressed: ~4x less Redis "
                                     "memory, ~10 µs more per pair in the worker", parse_bool,
                                     commands=CAPTURERS)

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


def default_text(f: Any) -> str:
    """A setting's default as a person writes it: 24h, the list of names, true, unset."""
    value = f.default if f.default is not MISSING else f.default_factory()
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if f.metadata["parse"] is parse_duration:
        return format_duration(value)
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v or 'none'}" for k, v in value.items())
    return str(value)


def read_by(command: str) -> list[str]:
    """The keys of the settings `command` reads (tagged with it)."""
    return [key for key, f in SETTINGS.items() if command in f.metadata["commands"]]


SETTINGS = {setting_key(f): f for f in fields(Config)}

