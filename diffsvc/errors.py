"""The exception tree of diffsvc: small, drawn once, every error names what was wrong."""

from __future__ import annotations

# ---- exit statuses: one meaning each (gate-like commands: 0 pass, 1 fail, 2 inconclusive;
# the rest from sysexits.h). `diffsvc --help` and the README's table list them from here.
EXIT_OK = 0
EXIT_FAIL = 1
EXIT_INCONCLUSIVE = 2
EXIT_USAGE = 64  # EX_USAGE: a bad command line (unknown flag, unknown --endpoint)
EXIT_DATAERR = 65  # EX_DATAERR: an input file is not what it claims (a bad HAR)
EXIT_NOINPUT = 66  # EX_NOINPUT: an input file cannot be read
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: Redis, an upstream, Grafana or the listen port
EXIT_SOFTWARE = 70  # EX_SOFTWARE: a bug in diffsvc (the traceback is printed)
EXIT_CONFIG = 78  # EX_CONFIG: a setting is missing or wrong (also a refused Redis password)
EXIT_INTERRUPTED = 130  # Ctrl-C

EXIT_CODES = {
    EXIT_OK: "success; gate-like commands (gate, replay --gate): pass",
    EXIT_FAIL: "gate-like commands: fail (candidate errors or a regression over the limit)",
    EXIT_INCONCLUSIVE: "gate-like commands: inconclusive (not enough evidence yet)",
    EXIT_USAGE: "usage error: unknown flag or value, unknown --endpoint",
    EXIT_DATAERR: "an input file is malformed (HAR, JSON lines, .gor)",
    EXIT_NOINPUT: "an input file cannot be read",
    EXIT_UNAVAILABLE: "a dependency is unavailable: Redis, an upstream, Grafana, the listen port",
    EXIT_SOFTWARE: "internal error (a bug; the traceback is printed)",
    EXIT_CONFIG: "configuration error: a setting is missing or wrong, Redis refused the password",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


class DiffsvcError(Exception):
    """Base class of every error diffsvc raises on purpose; `exit_code` is the CLI's status."""

    exit_code = EXIT_SOFTWARE


class ConfigError(DiffsvcError):
    """A setting has a bad value; names the key, the value and the reason."""

    exit_code = EXIT_CONFIG

    def __init__(self, key: str, reason: str, value: object = None) -> None:
        self.key = key
        self.reason = reason
        self.value = value
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"config key {key!r}: {reason}{shown}")


class RuleError(ConfigError):
    """An ignore/compare rule could not be parsed; names the rule."""


class DecodeError(DiffsvcError):
    """A body could not be decoded (bad compression, over the size cap)."""


class EmbeddedRedisError(DiffsvcError):
    """The embedded redis-server could not be found or started."""

    exit_code = EXIT_UNAVAILABLE


class MarkupError(DecodeError):
    """An XML/HTML document is not well-formed (compared as text, labelled *-invalid)."""


class ProtocolError(DiffsvcError):
    """An upstream sent something that is not HTTP/1.x."""


class GrafanaPushError(DiffsvcError):
    """Grafana refused or could not be reached while pushing dashboards (a refused token is a
    configuration error)."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        if refused:
            self.exit_code = EXIT_CONFIG


class UsageError(DiffsvcError):
    """The command line names something that does not exist (e.g. an unknown --endpoint)."""

    exit_code = EXIT_USAGE


class InputError(DiffsvcError):
    """An input file is malformed; names the file, the place in it and what was expected."""

    exit_code = EXIT_DATAERR

    def __init__(self, where: str, reason: str, value: object = None) -> None:
        self.where = where
        shown = "" if value is None else f" (got {value!r:.200})"
        super().__init__(f"{where}: {reason}{shown}")


class UnreadableError(InputError):
    """An input file does not exist or cannot be read."""

    exit_code = EXIT_NOINPUT


class UnavailableError(DiffsvcError):
    """A dependency (Redis, an upstream, Grafana, the listen port) cannot be used now."""

    exit_code = EXIT_UNAVAILABLE


# Why an upstream call failed: the `error_kind` of a Reply (diffsvc.core.models) and the
# `kind` label of diffsvc_errors_total. Transport kinds are set by the gateway's clients
# (diffsvc.gateway.failures); `undecodable` by the worker when a body cannot be decoded.
ERROR_KINDS = ("connect", "timeout", "reset", "tls", "protocol", "too_large", "undecodable",
               "other")
