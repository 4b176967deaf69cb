"""Redis key names, all from templates in one place (as rq's registry does)."""

from __future__ import annotations

PREFIX = "diffsvc"
QUEUE_NAME = "diffsvc-compare"

EXCHANGE = PREFIX + ":x:{id}"              # one stored Exchange (bytes, TTL = retention)
COMPARISON = PREFIX + ":c:{id}"            # one stored Comparison (bytes, TTL = retention)
ENDPOINTS = PREFIX + ":endpoints"          # set of endpoint names seen by workers
TOTALS = PREFIX + ":tot:{endpoint}"        # hash: pairs, matches, mismatches, errors, noise
FIELDS = PREFIX + ":fields:{endpoint}"     # hash: JSONPath -> mismatch count
SAMPLES = PREFIX + ":samples:{endpoint}"   # list: recent mismatching exchange ids
GATEWAY_COUNTERS = PREFIX + ":gateway"     # hash: requests, mirrored, dropped, capture_failed, ...


def exchange(exchange_id: str) -> str:
    return EXCHANGE.format(id=exchange_id)


def comparison(exchange_id: str) -> str:
    return COMPARISON.format(id=exchange_id)


def totals(endpoint: str) -> str:
    return TOTALS.format(endpoint=endpoint)


def fields(endpoint: str) -> str:
    return FIELDS.format(endpoint=endpoint)


def samples(endpoint: str) -> str:
    return SAMPLES.format(endpoint=endpoint)


MINUTE = PREFIX + ":m:{minute}:{endpoint}"  # hash: per-minute pairs/matches/mismatches/errors


def minute(endpoint: str, minute_: int) -> str:
    return MINUTE.format(minute=minute_, endpoint=endpoint)


LATENCY = PREFIX + ":lat:{minute}:{endpoint}"  # hash: per-minute latency histogram, p:<bucket> / c:<bucket>
RULES = PREFIX + ":rules"                      # hash: rule id -> JSON ignore rule added from the UI
RULES_VERSION = PREFIX + ":rules:version"      # int, bumped on every change to RULES


def latency(endpoint: str, minute_: int) -> str:
    return LATENCY.format(minute=minute_, endpoint=endpoint)


def endpoint_pattern(endpoint: str) -> str:
    """A SCAN pattern matching every per-endpoint key of `endpoint` (all end with its name)."""
    escaped = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in endpoint)
    return PREFIX + ":*:" + escaped

WORKER_COUNTERS = PREFIX + ":worker"       # hash: comparison duration histogram buckets, sum
ALERTS = PREFIX + ":alerts"                # hash: endpoint -> JSON of its open alert episode
