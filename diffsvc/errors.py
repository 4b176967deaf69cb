"""The exception tree of diffsvc: small, drawn once, every error names what was wrong."""

from __future__ import annotations


class DiffsvcError(Exception):
    """Base class of every error diffsvc raises on purpose."""


class ConfigError(DiffsvcError):
    """A setting has a bad value; names the key, the value and the reason."""

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


class MarkupError(DecodeError):
    """An XML/HTML document is not well-formed (compared as text, labelled *-invalid)."""


class ProtocolError(DiffsvcError):
    """An upstream sent something that is not HTTP/1.x."""


class GrafanaPushError(DiffsvcError):
    """Grafana refused or could not be reached while pushing dashboards."""


# Why an upstream call failed: the `error_kind` of a Reply (diffsvc.core.models) and the
# `kind` label of diffsvc_errors_total. Transport kinds are set by the gateway's clients
# (diffsvc.gateway.failures); `undecodable` by the worker when a body cannot be decoded.
ERROR_KINDS = ("connect", "timeout", "reset", "tls", "protocol", "too_large", "undecodable",
               "other")
