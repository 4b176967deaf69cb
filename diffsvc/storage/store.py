"""Everything diffsvc keeps in Redis: exchanges, comparisons, counters. Key names come from
`keys`; writes are pipelined; counting is idempotent per exchange id, so a job that runs
twice (a worker killed mid-batch) counts each exchange once."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import orjson
from redis import Redis
from redis.connection import Connection, PythonRespSerializer
from rq import Queue

from diffsvc.core import latency
from diffsvc.core import signatures as groups
from diffsvc.core.models import Comparison, Exchange, FieldDiff
from diffsvc.storage import builds, jobqueue, keys

VERDICT_FIELD = {"match": "matches", "mismatch": "mismatches", "error": "errors"}
SAMPLES_KEPT = 50
COUNTER_FIELDS = ("pairs", "matches", "mismatches", "errors")

# One call per batch of comparisons. Each is counted at most once per exchange (the SET NX
# of its comparison key), and the whole batch atomically: verdict counters, per-minute bucket
# and latency histogram, field counts, samples, and — for diff quality — noise counts
# (primary vs secondary) and signature groups. The counts are summed in Lua first, so a batch
# costs one HINCRBY per distinct counter, not ~12 commands per comparison. The batch travels
# as one JSON argument: packed by redis-py as ~30 arguments per comparison, it cost more
# than the comparisons themselves. Key names are inside it (built by `keys`): diffsvc needs
# one Redis, not a Cluster.
# ARGV: 1 ttl, 2 samples kept, 3 samples kept per group, 4 JSON {keysets, records}:
#   keysets: [{totals, fields, samples, minute, latency, noise_fields, noise_kinds, groups,
#   group_signatures, group_samples, error_samples}], one per (endpoint, minute, group);
#   records: [{key (of the comparison), comparison (stored bytes), ks (keyset number, from
#   1), verdict (counter field), endpoint, id, lat ([] or [primary field, candidate field]),
#   noise (0: no secondary, 1: equal, 2: differed), noise_paths, noise_kinds ("<kind>
#   <path>"), paths, sig ('' or signature id), sig_json, err ('' or the error kind of a
#   candidate call that failed where primary answered), build, at}]; 5 the endpoints set,
#   6 the builds zset (each build's first comparison time, kept with NX)
RECORD_SCRIPT = """
local ttl, kept, group_kept = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local counts, expiring, lists, signatures, endpoints, builds = {}, {}, {}, {}, {}, {}
local function add(key, field)
  local h = counts[key]
  if not h then h = {}; counts[key] = h end
  h[field] = (h[field] or 0) + 1
end
local function push(key, id, limit)
  local l = lists[key]
  if not l then l = {limit = limit}; lists[key] = l end
  l[#l + 1] = id
end
local counted = 0
local batch = cjson.decode(ARGV[4])
for _, c in ipairs(batch.records) do
  local k = batch.keysets[c.ks]
  if redis.call('SET', c.key, c.comparison, 'NX', 'EX', ttl) then
    counted = counted + 1
    add(k.totals, 'pairs'); add(k.totals, c.verdict)
    add(k.minute, 'pairs'); add(k.minute, c.verdict); expiring[k.minute] = true
    endpoints[c.endpoint] = true
    if c.build ~= '' and (not builds[c.build] or c.at < builds[c.build]) then
      builds[c.build] = c.at
    end
    for _, f in ipairs(c.lat) do add(k.latency, f); expiring[k.latency] = true end
    for _, p in ipairs(c.paths) do add(k.fields, p) end
    if c.verdict == 'mismatches' then push(k.samples, c.id, kept) end
    if c.err ~= '' then
      add(k.totals, 'cand_errors'); add(k.minute, 'cand_errors')
      add(k.totals, 'error:' .. c.err); add(k.minute, 'error:' .. c.err)
      push(k.error_samples, c.id, kept)
    end
    if c.noise > 0 then
      add(k.totals, 'noise_pairs'); add(k.minute, 'noise_pairs')
      if c.noise == 2 then add(k.totals, 'noise_mismatches'); add(k.minute, 'noise_mismatches') end
      for _, p in ipairs(c.noise_paths) do add(k.noise_fields, p) end
      for _, p in ipairs(c.noise_kinds) do add(k.noise_kinds, p) end
    end
    if c.sig ~= '' then
      add(k.groups, c.sig); add(k.minute, 'sig:' .. c.sig)
      local sigs = signatures[k.group_signatures] or {}
      signatures[k.group_signatures] = sigs
      sigs[c.sig] = c.sig_json
      push(k.group_samples, c.id, group_kept); expiring[k.group_samples] = true
    end
  end
end
for key, h in pairs(counts) do
  for field, n in pairs(h) do redis.call('HINCRBY', key, field, n) end
end
for name in pairs(endpoints) do redis.call('SADD', ARGV[5], name) end
for build, at in pairs(builds) do redis.call('ZADD', ARGV[6], 'NX', at, build) end
for key, sigs in pairs(signatures) do
  for sig, json in pairs(sigs) do redis.call('HSETNX', key, sig, json) end
end
for key, l in pairs(lists) do
  for i = math.max(1, #l - l.limit + 1), #l do redis.call('LPUSH', key, l[i]) end
  redis.call('LTRIM', key, 0, l.limit - 1)
end
for key in pairs(expiring) do redis.call('EXPIRE', key, ttl) end
return counted
"""


def connect(url: str, *, timeout: float = 2.0) -> Redis:
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                          health_check_interval=10)


# KEYS: exchange keys; ARGV: ttl, then one value per key. One command per batch: the
# client packs two arguments per exchange instead of a whole SET command (and parses one
# reply, not one per exchange); the gateway's writer thread is that much lighter.
_WRITE = """
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1]) end
return #KEYS
"""


_ONE_SEND = 1 << 30


class _LinearPacker(PythonRespSerializer):
    """One command as one buffer, joined once. redis-py's packer, asked for one buffer,
    appends each argument by joining it to all before it: a batch of 200 exchanges copied
    ~120 MB, 7% of the gateway's CPU (py-spy, bench/README.md)."""

    def pack(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):
            args = tuple(args[0].encode().split()) + args[1:]
        elif b" " in args[0]:
            args = tuple(args[0].split()) + args[1:]
        parts = [b"*%d\r\n" % len(args)]
        for arg in map(self.encode, args):
            parts += (b"$%d\r\n" % len(arg), arg, b"\r\n")
        return [b"".join(parts)]


class _OneSendConnection(Connection):
    """Packs a whole pipeline into one buffer. redis-py sends every value over 6,000 bytes
    with its own `sendall`, and each one releases the GIL; in the gateway, whose event loop
    always wants it back, a batch of 200 exchanges then waited for the GIL 400 times."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffer_cutoff = _ONE_SEND
        if isinstance(getattr(self, "_command_packer", None), PythonRespSerializer):
            self._command_packer = _LinearPacker(_ONE_SEND, self.encoder.encode)


def for_batches(r: Redis) -> Redis:
    """The same client, its (not yet opened) connections sending each pipeline in one go."""
    if r.connection_pool.connection_class is Connection:
        r.connection_pool.connection_class = _OneSendConnection
    return r


def write_exchanges(r: Redis, q: Queue, exchanges: Sequence[Exchange], ttl: float,
                    compress: bool = False) -> None:
    """Store a batch of exchanges (zstd frames with `compress`) and enqueue one comparison
    job for them, in one round trip (one MULTI/EXEC: the job never exists without its
    exchanges)."""
    if not exchanges:
        return
    script = r.register_script(_WRITE)
    ids = [ex.id for ex in exchanges]
    with r.pipeline() as pipe:
        pipe.multi()
        script(keys=[keys.exchange(i) for i in ids],
               args=[int(ttl), *(ex.to_bytes(compress) for ex in exchanges)], client=pipe)
        jobqueue.enqueue_batch(q, ids, pipeline=pipe)
        pipe.execute()


def load_exchanges(r: Redis, ids: Sequence[str]) -> list[Exchange | None]:
    raws = r.mget([keys.exchange(i) for i in ids]) if ids else []
    return [Exchange.from_bytes(cast(bytes, raw)) if raw else None for raw in raws]


def record_comparisons(r: Redis, comparisons: Iterable[Comparison], ttl: float,
                       latencies: Mapping[str, tuple[float, float]] | None = None,
                       noise: Mapping[str, list[FieldDiff] | None] | None = None,
                       candidate_errors: Mapping[str, str] | None = None) -> int:
    """Store comparisons and count them, each exchange at most once. Returns how many counted.
    `latencies` (exchange id -> primary ms, candidate ms) feeds the per-minute histograms;
    `noise` (exchange id -> primary-vs-secondary diffs, None without a usable secondary)
    feeds the noise counts; `candidate_errors` (exchange id -> error kind) the candidate's
    errors (only where primary answered). A mismatch is also counted in its signature group."""
    args = record_args(comparisons, ttl, latencies, noise, candidate_errors)
    if not args:
        return 0
    return int(r.register_script(RECORD_SCRIPT)(args=args))


def record_args(comparisons: Iterable[Comparison], ttl: float,
                latencies: Mapping[str, tuple[float, float]] | None = None,
                noise: Mapping[str, list[FieldDiff] | None] | None = None,
                candidate_errors: Mapping[str, str] | None = None) -> list[Any]:
    """The record script's arguments for `record_comparisons` ([] when there is nothing)."""
    latencies, noise, errs = latencies or {}, noise or {}, candidate_errors or {}
    records = []
    keysets: dict[tuple[str, int, str], int] = {}  # a batch shares most endpoint keys
    for c in comparisons:
        name = builds.scoped(c.endpoint, c.build)  # each build counts apart
        minute = int(c.compared_at // 60)
        lat = latencies.get(c.exchange_id)
        sig_id, sig_json = "", ""
        if c.verdict == "mismatch":
            sig = groups.signature(c.diffs)
            sig_id, sig_json = groups.signature_id(sig), groups.signature_json(sig).decode()
        # noise is measured on compared pairs only: an error verdict has none
        secondary = noise.get(c.exchange_id) if c.verdict != "error" else None
        records.append({
            "key": keys.comparison(c.exchange_id), "comparison": c.to_bytes().decode(),
            "ks": keysets.setdefault((name, minute, sig_id), len(keysets) + 1),
            "verdict": VERDICT_FIELD[c.verdict], "endpoint": name, "id": c.exchange_id,
            "build": c.build, "at": c.compared_at,
            "lat": [latency.field("p", lat[0]), latency.field("c", lat[1])] if lat else [],
            "noise": 0 if secondary is None else 2 if secondary else 1,
            "noise_paths": sorted({d.path for d in secondary}) if secondary else [],
            "noise_kinds": sorted({f"{d.kind} {d.path}" for d in secondary}) if secondary
            else [], "paths": c.paths, "sig": sig_id, "sig_json": sig_json,
            "err": errs.get(c.exchange_id, "") if c.verdict == "error" else ""})
    if not records:
        return []
    batch = {"records": records, "keysets": [_endpoint_keys(*where) for where in keysets]}
    return [int(ttl), SAMPLES_KEPT, groups.SAMPLES_PER_GROUP, orjson.dumps(batch),
            keys.ENDPOINTS, keys.BUILDS]


def _endpoint_keys(endpoint: str, minute: int, sig_id: str) -> dict[str, str]:
    """The keys a comparison of `endpoint` in `minute` (and group `sig_id`) counts in; a
    batch sends each set once and its records refer to it by number (see RECORD_SCRIPT)."""
    return {"totals": keys.totals(endpoint), "fields": keys.fields(endpoint),
            "samples": keys.samples(endpoint), "minute": keys.minute(endpoint, minute),
            "latency": keys.latency(endpoint, minute), "noise_fields": keys.noise_fields(endpoint),
            "noise_kinds": keys.noise_kinds(endpoint), "groups": keys.groups(endpoint),
            "group_signatures": keys.group_signatures(endpoint),
            "group_samples": keys.group_samples(endpoint, sig_id),
            "error_samples": keys.error_samples(endpoint)}


def load_comparison(r: Redis, exchange_id: str) -> Comparison | None:
    raw = r.get(keys.comparison(exchange_id))
    return Comparison.from_bytes(raw) if raw else None  # type: ignore[arg-type]


def incr_gateway(r: Redis, counts: Mapping[str, int]) -> None:
    _incr(r, keys.GATEWAY_COUNTERS, counts)


def incr_worker(r: Redis, counts: Mapping[str, int]) -> None:
    _incr(r, keys.WORKER_COUNTERS, counts)


def _incr(r: Redis, key: str, counts: Mapping[str, int]) -> None:
    """Add counter deltas to one hash, one pipelined HINCRBY per non-zero delta."""
    if not any(counts.values()):
        return
    with r.pipeline(transaction=False) as pipe:
        for name, n in counts.items():
            if n:
                pipe.hincrby(key, name, n)
        pipe.execute()


def ints(mapping: Mapping[Any, Any]) -> dict[str, int]:
    """A Redis hash of counters, decoded: {field: int}."""
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in mapping.items()}


def endpoint_stats(r: Redis) -> dict[str, dict[str, Any]]:
    """Totals and field counts of every endpoint: {endpoint: {pairs, ..., fields: {path: n}}}."""
    names = sorted(n.decode() for n in r.smembers(keys.ENDPOINTS))  # type: ignore[union-attr]
    with r.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(keys.totals(name))
            pipe.hgetall(keys.fields(name))
        replies = pipe.execute()
    out = {}
    for i, name in enumerate(names):
        totals = ints(replies[2 * i])
        stats: dict[str, Any] = {f: totals.get(f, 0) for f in COUNTER_FIELDS}
        stats["fields"] = ints(replies[2 * i + 1])
        out[name] = stats
    return out


def gateway_counters(r: Redis) -> dict[str, int]:
    return ints(cast(dict[Any, Any], r.hgetall(keys.GATEWAY_COUNTERS)))


def samples(r: Redis, endpoint: str, n: int = 5) -> list[str]:
    return [x.decode() for x in r.lrange(keys.samples(endpoint), 0, n - 1)]  # type: ignore[union-attr]


def now_minute() -> int:
    return int(time.time() // 60)


def load_exchange(r: Redis, exchange_id: str) -> tuple[Exchange | None, Comparison | None]:
    """One exchange and the comparison a worker made of it (either may have expired)."""
    raws = cast("list[bytes | None]", r.mget([keys.exchange(exchange_id),
                                              keys.comparison(exchange_id)]))
    return (Exchange.from_bytes(raws[0]) if raws[0] else None,
            Comparison.from_bytes(raws[1]) if raws[1] else None)


def minute_buckets(r: Redis, endpoints: Sequence[str], minutes: Sequence[int], *,
                   latencies: bool = True) -> dict[
        str, tuple[list[dict[str, int]], list[dict[str, int]]]]:
    """Per endpoint: the per-minute counter hashes and latency histograms of `minutes`
    (in order; an empty dict for a minute without traffic; no histograms, and no reads of
    them, with `latencies=False`). One pipelined round trip."""
    with r.pipeline(transaction=False) as pipe:
        for name in endpoints:
            for m in minutes:
                pipe.hgetall(keys.minute(name, m))
                if latencies:
                    pipe.hgetall(keys.latency(name, m))
        replies = pipe.execute()
    out = {}
    width = 2 if latencies else 1
    step = width * len(minutes)
    for i, name in enumerate(endpoints):
        chunk = replies[i * step:(i + 1) * step]
        out[name] = ([ints(h) for h in chunk[0::width]],
                     [ints(h) for h in chunk[1::width]] if latencies else [])
    return out


def window_totals(r: Redis, endpoints: Sequence[str], minutes: Sequence[int]) -> dict[
        str, dict[str, int]]:
    """Per endpoint with traffic in `minutes`: its per-minute counters summed."""
    out: dict[str, dict[str, int]] = {}
    for name, (buckets, _) in minute_buckets(r, endpoints, minutes, latencies=False).items():
        total: dict[str, int] = {}
        for bucket in buckets:
            for k, v in bucket.items():
                total[k] = total.get(k, 0) + v
        if total:
            out[name] = total
    return out


def clear(r: Redis, endpoint: str | None = None) -> int:
    """Delete stored data: everything (exchanges, comparisons, counters; ignore rules are
    kept), or the counters, buckets and samples of one endpoint. Returns keys deleted."""
    if endpoint is None:
        pattern = keys.PREFIX + ":*"
        keep = {keys.RULES, keys.RULES_VERSION}
        return _delete(r, pattern, keep)
    deleted = 0
    for name in {endpoint, *(n for n in endpoint_names(r) if builds.split(n)[0] == endpoint)}:
        deleted += _delete(r, keys.endpoint_pattern(name), set())  # every build of it
        deleted += int(r.srem(keys.ENDPOINTS, name))
    return deleted


def _delete(r: Redis, pattern: str, keep: set[str]) -> int:
    deleted = 0
    batch: list[bytes] = []
    for key in r.scan_iter(match=pattern, count=1000):
        if key.decode() not in keep:
            batch.append(key)
        if len(batch) >= 1000:
            deleted += int(r.unlink(*batch))
            batch = []
    if batch:
        deleted += int(r.unlink(*batch))
    return deleted


def endpoint_names(r: Redis) -> list[str]:
    return sorted(n.decode() for n in cast("set[bytes]", r.smembers(keys.ENDPOINTS)))


def load_comparisons(r: Redis, ids: Sequence[str]) -> list[Comparison | None]:
    raws = cast("list[bytes | None]", r.mget([keys.comparison(i) for i in ids])) if ids else []
    return [Comparison.from_bytes(raw) if raw else None for raw in raws]
