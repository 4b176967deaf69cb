"""Redis key names, all from templates in one place (as rq's registry does)."""

from __future__ import annotations

PREFIX = "diffsvc"
QUEUE_NAME = "diffsvc-compare"

# ---- templates ---------------------------------------------------------------------------
# per exchange
EXCHANGE = PREFIX + ":x:{id}"                      # one stored Exchange (bytes, TTL = retention)
COMPARISON = PREFIX + ":c:{id}"                    # one stored Comparison (bytes, TTL = retention)
# per endpoint, counted by workers
ENDPOINTS = PREFIX + ":endpoints"                  # set of endpoint names seen by workers
                                                   # ("<endpoint> @<build>" for a known build)
BUILDS = PREFIX + ":builds"                        # zset: candidate build -> first compared at
TOTALS = PREFIX + ":tot:{endpoint}"                # hash: pairs, matches, mismatches, errors, noise_*
FIELDS = PREFIX + ":fields:{endpoint}"             # hash: JSONPath -> mismatch count
SAMPLES = PREFIX + ":samples:{endpoint}"           # list: recent mismatching exchange ids
MINUTE = PREFIX + ":m:{minute}:{endpoint}"         # hash: per-minute pairs/matches/mismatches/errors
LATENCY = PREFIX + ":lat:{minute}:{endpoint}"      # hash: per-minute latency histogram, p:/c:<bucket>
NOISE_FIELDS = PREFIX + ":noise:{endpoint}"        # hash: JSONPath -> primary-vs-secondary count
GROUPS = PREFIX + ":groups:{endpoint}"             # hash: signature id -> mismatch count
GROUP_SIGNATURES = PREFIX + ":groupsig:{endpoint}" # hash: signature id -> JSON [[path, kind], ...]
GROUP_SAMPLES = PREFIX + ":gs:{sig}:{endpoint}"    # list: recent exchange ids of one signature
EXAMPLES = PREFIX + ":ex:{endpoint}"               # sorted set: a few raw request targets
NOISE_KINDS = PREFIX + ":noisek:{endpoint}"        # hash: "<kind> <JSONPath>" -> primary-vs-secondary
ERROR_SAMPLES = PREFIX + ":errs:{endpoint}"        # list: recent candidate-error exchange ids
VOLATILE = PREFIX + ":vol:{endpoint}"              # hash: JSONPath -> request keys production
                                                   # answered differently; "n <path>": repeats seen
PRIMARY_VALUES = PREFIX + ":pv:{key}:{endpoint}"   # hash (TTL): location -> digest of the last
                                                   # primary value for one request key
# per process kind
GATEWAY_COUNTERS = PREFIX + ":gateway"             # hash: requests, mirrored, captured, ...
WORKER_COUNTERS = PREFIX + ":worker"               # hash: comparison duration histogram, sum
WORKER_ALIVE = PREFIX + ":alive:{name}"            # string host:pid, short TTL: worker running
# report server
RULES = PREFIX + ":rules"                          # hash: rule id -> JSON ignore rule from the UI
RULES_VERSION = PREFIX + ":rules:version"          # int, bumped on every change to RULES
ALERTS = PREFIX + ":alerts"                        # hash: endpoint -> JSON of its open alert episode


# ---- builders ----------------------------------------------------------------------------

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


def minute(endpoint: str, minute_: int) -> str:
    return MINUTE.format(minute=minute_, endpoint=endpoint)


def latency(endpoint: str, minute_: int) -> str:
    return LATENCY.format(minute=minute_, endpoint=endpoint)


def noise_fields(endpoint: str) -> str:
    return NOISE_FIELDS.format(endpoint=endpoint)


def groups(endpoint: str) -> str:
    return GROUPS.format(endpoint=endpoint)


def group_signatures(endpoint: str) -> str:
    return GROUP_SIGNATURES.format(endpoint=endpoint)


def group_samples(endpoint: str, sig: str) -> str:
    return GROUP_SAMPLES.format(sig=sig, endpoint=endpoint)


def examples(endpoint: str) -> str:
    return EXAMPLES.format(endpoint=endpoint)


def noise_kinds(endpoint: str) -> str:
    return NOISE_KINDS.format(endpoint=endpoint)


def error_samples(endpoint: str) -> str:
    return ERROR_SAMPLES.format(endpoint=endpoint)


def volatile(endpoint: str) -> str:
    return VOLATILE.format(endpoint=endpoint)


def primary_values(endpoint: str, request_key: str) -> str:
    return PRIMARY_VALUES.format(key=request_key, endpoint=endpoint)


def queue_name(run: str | None = None) -> str:
    """The job queue: the shared one, or a replay run's own (`replay --run NAME`)."""
    return QUEUE_NAME if run is None else f"{QUEUE_NAME}-run-{run}"


def worker_alive(name: str) -> str:
    return WORKER_ALIVE.format(name=name)


def endpoint_pattern(endpoint: str) -> str:
    """A SCAN pattern matching every per-endpoint key of `endpoint` (all end with its name)."""
    escaped = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in endpoint)
    return PREFIX + ":*:" + escaped
