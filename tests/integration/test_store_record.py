"""The worker's record path: a batch of comparisons in one Lua call, summed per counter,
each exchange counted once, stored byte for byte, samples newest first and bounded."""

from __future__ import annotations

import time

from redis import Redis

from diffsvc.core import signatures as groups
from diffsvc.core.models import Comparison, FieldDiff
from diffsvc.storage import keys, store
from diffsvc.storage import quality as diffq


def _mismatch(i: int, endpoint: str = "GET /a", path: str = "$.x") -> Comparison:
    return Comparison(f"m{i}", endpoint, "mismatch", [FieldDiff(path, "changed", i, i + 1)])


def test_a_batch_is_counted_once_per_exchange_and_stored_intact(r: Redis) -> None:
    now = time.time()
    batch = [_mismatch(i) for i in range(60)] + [
        Comparison("ok1", "GET /a", "match", compared_at=now),
        Comparison("e1", "GET /b", "error", error="candidate: timeout", body_kind="empty"),
        _mismatch(99, "GET /b", "$.y"),
        Comparison("odd", "GET /b", "mismatch", [FieldDiff("$['ключ \"q\"']", "changed",
                                                            "\u0000\n", "é")])]
    latencies = {c.exchange_id: (3.0, 70.0) for c in batch}
    assert store.record_comparisons(r, batch, 60, latencies) == len(batch)
    assert store.record_comparisons(r, batch[:10] + [_mismatch(100)], 60, latencies) == 1

    stats = store.endpoint_stats(r)
    a, b = stats["GET /a"], stats["GET /b"]
    assert (a["pairs"], a["matches"], a["mismatches"], a["errors"]) == (62, 1, 61, 0)
    assert (b["pairs"], b["mismatches"], b["errors"]) == (3, 2, 1)
    assert a["fields"] == {"$.x": 61} and b["fields"] == {"$.y": 1, "$['ключ \"q\"']": 1}
    for c in batch:  # stored byte for byte, with the retention as TTL
        assert r.get(keys.comparison(c.exchange_id)) == c.to_bytes()
        assert 0 < r.ttl(keys.comparison(c.exchange_id)) <= 60
    # samples: newest first, at most SAMPLES_KEPT
    samples = [x.decode() for x in r.lrange(keys.samples("GET /a"), 0, -1)]
    assert samples == [f"m{i}" for i in (100, *range(59, 59 - store.SAMPLES_KEPT + 1, -1))]
    # one group per signature, its newest samples, its signature text
    sig = groups.signature(_mismatch(0).diffs)
    sig_id = groups.signature_id(sig)
    q = diffq.quality_stats(r, ["GET /a"])["GET /a"]
    assert q["groups"] == {sig_id: (groups.signature_json(sig), 61)}
    assert diffq.group_samples(r, "GET /a", sig_id, 10) == ["m100", "m59", "m58", "m57", "m56"]
    assert 0 < r.ttl(keys.group_samples("GET /a", sig_id)) <= 60
    # per-minute buckets and latency histograms carry the same counts, and expire
    minute = int(batch[0].compared_at // 60)
    buckets, hists = store.minute_buckets(r, ["GET /a"], [minute - 1, minute, minute + 1])["GET /a"]
    assert sum(bk.get("pairs", 0) for bk in buckets) == 62
    # a primary and a candidate field each; m100 was recorded without latencies
    assert sum(sum(h.values()) for h in hists) == 2 * 61
    assert 0 < r.ttl(keys.minute("GET /a", minute)) <= 60
    assert store.endpoint_names(r) == ["GET /a", "GET /b"]


def test_an_empty_batch_records_nothing(r: Redis) -> None:
    assert store.record_comparisons(r, [], 60) == 0
    assert r.dbsize() == 0
