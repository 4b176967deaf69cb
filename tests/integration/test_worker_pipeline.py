"""The worker's pipelined batch on a real Redis: a batch of several chunks, some of its
exchanges expired, is compared and counted once per exchange whatever chunk it fell in; a
failed record fails the job (for RQ to run it again) instead of being lost."""

from __future__ import annotations

import pytest
from redis import Redis
from redis.exceptions import RedisError

from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.storage import jobqueue, keys, store
from workers import jobs


def _exchange(i: int) -> Exchange:
    same = b'{"n": %d}' % i
    other = same if i % 4 else b'{"n": -1}'
    json = [("Content-Type", "application/json")]
    return Exchange(Request("GET", f"/api/things/{i}"), Reply(200, json, same, 1.0),
                    Reply(200, json, other, 2.0), id=f"x{i}")


def test_batch_of_several_chunks_is_counted_once_per_exchange(r: Redis, make_config) -> None:
    exchanges = [_exchange(i) for i in range(jobs.CHUNK * 3 + 7)]
    store.write_exchanges(r, jobqueue.queue(r), exchanges, 600)
    gone = {f"x{i}" for i in (3, jobs.CHUNK + 1, jobs.CHUNK * 3 + 2)}  # expired, one per chunk
    r.delete(*(keys.exchange(i) for i in gone))
    ids = [e.id for e in exchanges]
    ctx = jobs.configure(make_config())

    counts = jobs.compare_exchanges(r, ids, ctx)
    assert counts == {"compared": len(ids) - 3, "counted": len(ids) - 3, "missing": 3}
    [stats] = store.endpoint_stats(r).values()
    mismatches = sum(1 for i in range(len(ids)) if i % 4 == 0 and f"x{i}" not in gone)
    assert (stats["pairs"], stats["mismatches"]) == (len(ids) - 3, mismatches)
    assert all(store.load_comparison(r, i) for i in ids if i not in gone)
    # the same batch again (a job RQ ran twice) counts nothing twice
    assert jobs.compare_exchanges(r, ids, ctx)["counted"] == 0


def test_a_failed_record_fails_the_job(r: Redis, make_config) -> None:
    exchanges = [_exchange(i) for i in range(jobs.CHUNK * 2)]
    store.write_exchanges(r, jobqueue.queue(r), exchanges, 600)
    r.set(keys.totals("GET /api/things/{id}"), "not a hash")  # every record: WRONGTYPE
    with pytest.raises(RedisError, match="WRONGTYPE"):
        jobs.compare_exchanges(r, [e.id for e in exchanges], jobs.configure(make_config()))


def test_compressed_frames_are_stored_smaller_and_compared_alike(r: Redis, make_config) -> None:
    plain = [_exchange(i) for i in range(20)]
    packed = [Exchange(e.request, e.primary, e.candidate, id=f"z{i}")
              for i, e in enumerate(plain)]
    q = jobqueue.queue(r)
    store.write_exchanges(r, q, plain, 600)
    store.write_exchanges(r, q, packed, 600, compress=True)
    raw, plain_raw = r.get(keys.exchange("z1")), r.get(keys.exchange("x1"))
    assert raw is not None and plain_raw is not None
    assert raw.startswith(b"DXZ\n") and len(raw) < len(plain_raw)
    assert store.load_exchanges(r, ["z1"]) == [packed[1]]
    ctx = jobs.configure(make_config())
    jobs.compare_exchanges(r, [e.id for e in plain + packed], ctx)
    verdicts = {c.exchange_id: c.verdict for c in store.load_comparisons(
        r, [e.id for e in plain + packed]) if c}
    assert [verdicts[f"z{i}"] for i in range(20)] == [verdicts[f"x{i}"] for i in range(20)]
    assert "mismatch" in verdicts.values() and "match" in verdicts.values()


def test_a_redis_that_lost_its_scripts_still_records(r: Redis, make_config) -> None:
    exchanges = [_exchange(i) for i in range(jobs.CHUNK + 5)]
    store.write_exchanges(r, jobqueue.queue(r), exchanges, 600)
    r.script_flush()  # a restarted Redis: the record script's EVALSHA meets NOSCRIPT
    counts = jobs.compare_exchanges(r, [e.id for e in exchanges], jobs.configure(make_config()))
    assert counts["counted"] == len(exchanges)


def test_after_a_failed_record_the_connections_are_clean(r: Redis, make_config) -> None:
    exchanges = [_exchange(i) for i in range(jobs.CHUNK * 3)]
    store.write_exchanges(r, jobqueue.queue(r), exchanges, 600)
    totals = keys.totals("GET /api/things/{id}")
    r.set(totals, "not a hash")
    ctx = jobs.configure(make_config())
    with pytest.raises(RedisError, match="WRONGTYPE"):  # a chunk's MGET was in flight
        jobs.compare_exchanges(r, [e.id for e in exchanges], ctx)
    r.delete(totals)
    # no reply left over on a pooled connection: each command reads its own
    assert r.get(keys.exchange("x0")) == exchanges[0].to_bytes()
    counts = jobs.compare_exchanges(r, [e.id for e in exchanges], ctx)
    assert counts["compared"] == len(exchanges)
    assert store.load_exchanges(r, ["x1"]) == [exchanges[1]]
