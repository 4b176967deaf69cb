"""Volatility learned from production itself: did production answer the *same* request
(method, path, query) differently on two occasions?

For every differing field of a comparison, the worker records a digest of primary's value
under the request key (`keys.primary_values`: a small hash per request key, at most
`MAX_LOCATIONS` fields, expiring with the retention). When a request key comes back and
primary's value at a location is not the one seen before, the field's folded path gets one
more piece of evidence (`keys.volatile`); every comparison of a repeat counts in `n <path>`,
so evidence / repeats is the rate at which production changes the field by itself.

Evidence from the candidate alone (its values, their shapes) is never recorded here."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from redis import Redis

from diffsvc.core.models import Comparison, Exchange
from diffsvc.storage import keys

MAX_LOCATIONS = 32
REPEATS = "n "  # field prefix of the repeats count in keys.volatile

# KEYS: per observation, the request key's hash then the endpoint's volatile hash;
# ARGV: ttl, max locations, then per observation location, folded path, value digest.
_OBSERVE = """
local ttl, most = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  local values, volatile = KEYS[2 * i - 1], KEYS[2 * i]
  local location, path, value = ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  local old = redis.call('HGET', values, location)
  if old then
    redis.call('HINCRBY', volatile, 'n ' .. path, 1)
    if old ~= value then redis.call('HINCRBY', volatile, path, 1) end
    redis.call('HSET', values, location, value)
  elseif redis.call('HLEN', values) < most then
    redis.call('HSET', values, location, value)
  end
  redis.call('EXPIRE', values, ttl)
  redis.call('EXPIRE', volatile, ttl)
end
return #KEYS / 2
"""


@dataclass(frozen=True, slots=True)
class Observation:
    endpoint: str
    request_key: str
    location: str
    path: str
    value: str


def request_key(exchange: Exchange) -> str:
    q = exchange.request
    return hashlib.sha1(f"{q.method} {q.path}?{q.query}".encode()).hexdigest()[:16]


def observations(exchange: Exchange, comparison: Comparison) -> list[Observation]:
    """Primary's values at the fields where the candidate differed (none for `added`)."""
    if not comparison.diffs:
        return []
    key = request_key(exchange)
    return [Observation(comparison.endpoint, key, d.location or d.path, d.path,
                        hashlib.sha1(orjson.dumps(d.primary, default=repr)).hexdigest()[:12])
            for d in comparison.diffs if d.kind != "added" and d.path != "body"]


def record(r: Redis, found: Iterable[Observation], ttl: float) -> None:
    found = list(found)
    if not found:
        return
    script = r.register_script(_OBSERVE)
    key_list: list[str] = []
    args: list[str | int] = [int(ttl), MAX_LOCATIONS]
    for o in found:
        key_list += [keys.primary_values(o.endpoint, o.request_key), keys.volatile(o.endpoint)]
        args += [o.location, o.path, o.value]
    script(keys=key_list, args=args)


def learned(r: Redis, endpoints: Sequence[str]) -> dict[str, dict[str, tuple[int, int]]]:
    """Per endpoint: {folded path: (request keys answered differently, repeats seen)}."""
    with r.pipeline(transaction=False) as pipe:
        for name in endpoints:
            pipe.hgetall(keys.volatile(name))
        replies = pipe.execute()
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for name, raw in zip(endpoints, replies, strict=True):
        counts = {k.decode(): int(v) for k, v in raw.items()}
        out[name] = {path: (counts.get(path, 0), n) for field, n in counts.items()
                     if field.startswith(REPEATS) and (path := field[len(REPEATS):])}
    return out
