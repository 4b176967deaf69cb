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
