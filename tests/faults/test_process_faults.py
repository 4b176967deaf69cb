"""Faults in the middle, with real processes: Redis down at start, killed under load and
started again; a worker SIGKILLed mid-batch; SIGTERM to a worker and to the gateway."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import orjson
import pytest
from redis import Redis
from rq import Worker
from rq.registry import StartedJobRegistry

from diffsvc import gateway
from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.ops.embedded import EmbeddedRedis, free_port
from diffsvc.storage import jobqueue, keys, store
from tests.conftest import run_worker_burst
from tests.faults.conftest import get, primary_app, spawn, stored_exchanges, stored_ids, wait_for

JSON = [("Content-Type", "application/json")]


def pairs(r: Redis) -> int:
    return sum(s["pairs"] for s in store.endpoint_stats(r).values())


def slow_exchanges(n: int) -> list[Exchange]:
    """Exchanges whose arrays differ in length and in every item: no item lines up, so
    deepdiff pairs all of them (about 20 ms each)."""
    a = orjson.dumps([{"i": i, "v": "x" * 10} for i in range(200)])
    b = orjson.dumps([{"i": i, "v": "y" * 10} for i in range(1, 200)])
    return [Exchange(Request("GET", f"/slow/{i}"), Reply(200, JSON, a), Reply(200, JSON, b))
            for i in range(n)]


def write(r: Redis, exchanges: list[Exchange], batch: int) -> None:
    q = jobqueue.queue(r)
    for start in range(0, len(exchanges), batch):
        store.write_exchanges(r, q, exchanges[start:start + batch], 3600)


def started(r: Redis) -> int:
    return StartedJobRegistry(keys.QUEUE_NAME, connection=r).count


class Load(threading.Thread):
    """Sends requests back to back until stopped; counts answers that are not primary's."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.sent = 0
        self.errors: Counter[str] = Counter()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.sent += 1
            try:
                status, body = get(self.url, f"/api/load/{self.sent}", timeout=10)
                if status != 200 or orjson.loads(body)["path"] != f"/api/load/{self.sent}":
                    self.errors[f"status {status}"] += 1
            except Exception as exc:  # a client error of any kind is what this test counts
                self.errors[type(exc).__name__] += 1

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


def test_redis_down_at_start_dying_under_load_and_back(serve, make_config, processes, tmp_path):
    redis = EmbeddedRedis()  # not started yet: Redis is down at start
    url = redis.url
    prod, cand = serve(primary_app()), serve(primary_app())
    cfg = make_config(redis_url=url, primary=prod.url, candidate=cand.url)
    gw = serve(gateway.build_app(cfg))
    counters = gw.app[gateway.COUNTERS]

    # 1. Redis down at start: clients are served, the exchanges are counted as not captured
    for i in range(10):
        assert get(gw.url, f"/api/start/{i}")[0] == 200
    wait_for(lambda: counters["capture_failed"] >= 10, what="capture_failed counted")
    assert counters["captured"] == 0

    # 2. Redis comes up: capture resumes by itself; a worker started now compares
    redis.start()
    r = store.connect(url)
    load = Load(gw.url)
    load.start()
    wait_for(lambda: counters["captured"] > 0, what="capture resuming after Redis started")
    processes.append(spawn(cfg, tmp_path, "worker", log_name="worker"))
    wait_for(lambda: pairs(r) > 0, what="the worker comparing")

    # 3. Redis killed under load, then started again on the same port (empty: no persistence)
    assert redis.process is not None
    redis.process.kill()
    redis.process.wait()
    failed_before = counters["capture_failed"]
    wait_for(lambda: counters["capture_failed"] > failed_before, what="failures while Redis is dead")
    redis.stop()
    redis.start()
    r = store.connect(url)
    captured_at_restart = counters["captured"]
    wait_for(lambda: counters["captured"] > captured_at_restart + 20, what="capture resuming")
    load.stop()

    assert load.errors == Counter(), f"client errors: {load.errors}"
    assert load.sent > 50

    # every mirrored exchange is accounted for: captured, or counted as not captured
    def accounted() -> bool:
        lost = counters["capture_failed"] + counters["capture_dropped"] + counters["shadow_dropped"]
        return counters["mirrored"] == counters["captured"] + lost
    wait_for(accounted, what=f"mirrored == captured + failed ({dict(counters)})")

    # the worker reconnected: every exchange stored since the restart is compared, once
    wait_for(lambda: stored_ids(r) and pairs(r) == len(stored_ids(r)), timeout=60,
             what="the reconnected worker comparing everything stored after the restart")
    assert all(store.load_comparison(r, i) for i in stored_ids(r))
    redis.stop()


def test_worker_sigkilled_mid_batch_loses_nothing_and_counts_once(r, make_config, processes,
                                                                   tmp_path):
    cfg = make_config()
    exchanges = slow_exchanges(300)
    write(r, exchanges, batch=100)
    first = spawn(cfg, tmp_path, "worker", log_name="first")
    processes.append(first)
    wait_for(lambda: started(r) > 0, what="the first worker taking a batch")
    time.sleep(0.3)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert pairs(r) < len(exchanges), "the batch finished before the kill; the test proves nothing"
    assert started(r) == 1  # the abandoned job, left behind in RQ's StartedJobRegistry

    second = spawn(cfg, tmp_path, "worker", log_name="second")
    processes.append(second)
    wait_for(lambda: pairs(r) >= len(exchanges), timeout=90, what="every exchange counted")
    wait_for(lambda: jobqueue.depth(r) == 0 and started(r) == 0, what="queue drained")
    assert pairs(r) == len(exchanges)
    assert all(store.load_comparison(r, ex.id) for ex in exchanges)
    stats = store.endpoint_stats(r)
    assert sum(s["mismatches"] for s in stats.values()) == len(exchanges)


def test_a_batch_run_twice_counts_each_exchange_once(r, make_config) -> None:
    from workers import jobs

    ctx = jobs.configure(make_config())
    exchanges = slow_exchanges(20)
    write(r, exchanges, batch=20)
    ids = [ex.id for ex in exchanges]
    assert jobs.compare_exchanges(r, ids, ctx)["counted"] == 20
    assert jobs.compare_exchanges(r, ids[:10], ctx)["counted"] == 0
    assert jobs.compare_exchanges(r, ids, ctx)["counted"] == 0
    assert pairs(r) == 20


def test_sigterm_lets_the_worker_finish_its_batch(r, make_config, processes, tmp_path):
    cfg = make_config()
    exchanges = slow_exchanges(50)  # about a second of work: well within the drain timeout
    write(r, exchanges, batch=50)
    worker = spawn(cfg, tmp_path, "worker", log_name="worker")
    processes.append(worker)
    wait_for(lambda: started(r) > 0, what="the worker taking the batch")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, (tmp_path / "worker.log").read_text()
    assert pairs(r) == len(exchanges), "SIGTERM cut the batch short"


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_an_idle_worker_cleanly(r, make_config, processes, tmp_path, workers):
    """An idle worker stops at once with status 0; before, it started over and was ended by
    the drain deadline's forced exit (status 1)."""
    worker = spawn(make_config(workers=workers), tmp_path, "worker", log_name="worker")
    processes.append(worker)
    wait_for(lambda: Worker.count(connection=r) >= workers, what="the workers registering")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, (tmp_path / "worker.log").read_text()


def test_sigterm_lets_the_gateway_answer_and_store_in_flight_requests(serve, r, make_config,
                                                                       processes, tmp_path):
    hits: Counter[str] = Counter()
    prod = serve(primary_app(hits, delay=1.0))
    cand = serve(primary_app())
    port = free_port()
    cfg = make_config(primary=prod.url, candidate=cand.url, listen=f"127.0.0.1:{port}")
    proc = spawn(cfg, tmp_path, "gateway", log_name="gateway")
    processes.append(proc)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(url), what="the gateway listening")
    hits.clear()

    results: list[int] = []
    threads = [threading.Thread(target=lambda i=i: results.append(get(url, f"/api/t/{i}")[0]))
               for i in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: sum(hits.values()) == 8, what="8 requests in flight at primary")
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(30)
    assert results == [200] * 8
    assert proc.wait(30) == 0
    got = {ex.request.path for ex in stored_exchanges(r)}
    assert {f"/api/t/{i}" for i in range(8)} <= got
    run_worker_burst(cfg)
    assert pairs(r) == len(got)


def _answers(url: str) -> bool:
    try:
        return get(url, "/ready", timeout=2)[0] == 200
    except OSError:
        return False
