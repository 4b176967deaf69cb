"""The gateway's write path: a batch of exchanges in one Lua call and one send, read back
intact, with the comparison job enqueued with them."""

from __future__ import annotations

from redis import Redis

from bench import pairs
from diffsvc.storage import jobqueue, keys, store


def test_batch_written_in_one_send_reads_back_intact(redis_url: str, r: Redis) -> None:
    client = store.for_batches(store.connect(redis_url))
    exchanges = pairs.recorded(250)  # ~6 KB each: larger than redis-py's 6,000-byte cutoff
    store.write_exchanges(client, jobqueue.queue(client), exchanges, ttl=60)
    assert type(client.connection_pool.get_connection()).__name__ == "_OneSendConnection"
    loaded = store.load_exchanges(r, [e.id for e in exchanges])
    assert [x.to_bytes() if x else None for x in loaded] == [e.to_bytes() for e in exchanges]
    assert 55 <= r.ttl(keys.exchange(exchanges[0].id)) <= 60
    job_ids = jobqueue.queue(r).job_ids
    assert len(job_ids) == 1
    assert jobqueue.queue(r).fetch_job(job_ids[0]).args == ([e.id for e in exchanges],)


def test_empty_batch_writes_nothing(r: Redis) -> None:
    store.write_exchanges(r, jobqueue.queue(r), [], ttl=60)
    assert r.dbsize() == 0
