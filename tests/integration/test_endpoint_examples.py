"""Endpoint templates carry a few raw examples: the worker keeps them in Redis (bounded),
the report shows them."""

from __future__ import annotations

from collections.abc import Callable

from redis import Redis

from diffsvc.config import Config
from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.report import data, formats
from diffsvc.storage import examples, jobqueue, keys, store
from tests.conftest import CRITERIA, run_worker_burst


def reply(n: int) -> Reply:
    return Reply(200, [("Content-Type", "application/json")], b'{"row": %d}' % n)


def test_each_template_keeps_a_few_raw_examples(make_config: Callable[..., Config],
                                                r: Redis) -> None:
    cfg = make_config(batch_size=4)
    exchanges = [Exchange(Request("GET", f"/db/t/{n}.json", "_shape=array" if n % 2 else "",
                                  [], b""), reply(n), reply(n)) for n in range(1, 13)]
    q = jobqueue.queue(r)
    for start in range(0, len(exchanges), cfg.batch_size):
        store.write_exchanges(r, q, exchanges[start:start + cfg.batch_size], cfg.retention)
    run_worker_burst(cfg)
    [entry] = data.build(r, CRITERIA).to_dict()["endpoints"]
    assert entry["endpoint"] == "GET /db/t/{id}.json" and entry["pairs"] == 12
    targets = {e.request.target for e in exchanges}
    assert len(entry["examples"]) == examples.EXAMPLES_KEPT
    assert set(entry["examples"]) <= targets
    assert 0 < r.ttl(keys.examples(entry["endpoint"])) <= cfg.retention
    text = formats.as_table(data.build(r, CRITERIA))
    assert f"    e.g. {', '.join(entry['examples'])}" in text
