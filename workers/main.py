"""The worker entry point: N RQ worker processes on the comparison queue.

Each process runs a SimpleWorker (no fork per job: rules are compiled once per process);
`--burst` drains the queue and exits."""

from __future__ import annotations

import logging
import multiprocessing
import signal

from rq import SimpleWorker

from diffsvc import jobqueue, store
from diffsvc.config import Config

from . import jobs


def run_one(cfg: Config, burst: bool, name: str | None = None) -> bool:
    assert cfg.redis_url is not None
    jobs.configure(cfg)
    connection = store.connect(cfg.redis_url, timeout=30)
    worker = SimpleWorker([jobqueue.queue(connection)], connection=connection, name=name)
    return worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)


def _child(cfg: Config, burst: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent forwards SIGTERM
    run_one(cfg, burst)


def run(cfg: Config, *, burst: bool = False, processes: int = 1) -> int:
    """Run `processes` workers until the queue is empty (burst) or SIGTERM/SIGINT."""
    cfg.require("redis_url")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    if processes == 1:
        run_one(cfg, burst)
        return 0
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_child, args=(cfg, burst), daemon=False)
                for _ in range(processes)]
    for child in children:
        child.start()

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid and child.is_alive():
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()
    return max((c.exitcode or 0) for c in children)

