"""The worker entry point: one RQ worker process on the comparison queue (`diffsvc worker
--workers N` forks N of them through diffsvc.ops.processes).

Each process runs a SimpleWorker (no fork per job: rules are compiled once per process);
`--burst` drains the queue and exits."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.exceptions import StopRequested

from diffsvc.config import Config, logs
from diffsvc.storage import jobqueue, recovery, store, waiting
from workers import jobs

DRAIN_TIMEOUT = 8.0  # SIGTERM: the batch in hand may finish for this long (within `up`s 10 s)
RECONNECT_WAIT = 5.0  # longest wait between attempts to reach Redis

log = logging.getLogger("diffsvc.worker")


class DrainingWorker(SimpleWorker):
    """A SimpleWorker whose warm shutdown (SIGTERM) is bounded: after DRAIN_TIMEOUT the
    process exits, and the unfinished batch is re-enqueued by another worker's sweep."""

    max_connection_wait_time = RECONNECT_WAIT
    stop_asked = False  # rq sets _stop_requested only when busy; an idle worker just returns
    _deadline: threading.Timer | None = None

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        # rq registers the worker before it installs its signal handlers; a SIGTERM in
        # between would kill the process by default. Install them first.
        self._install_signal_handlers()
        super().bootstrap(*args, **kwargs)

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_asked = True
        if self._deadline is None:
            self._deadline = threading.Timer(DRAIN_TIMEOUT, self._force_exit)
            self._deadline.daemon = True
            self._deadline.start()
        super().request_stop(signum, frame)

    def _force_exit(self) -> None:
        log.warning("worker %s: not stopped %.0f s after SIGTERM; exiting (status 1), the batch "
                    "in hand is re-enqueued. Where each thread was:", self.name, DRAIN_TIMEOUT)
        faulthandler.dump_traceback(all_threads=True)
        os._exit(1)

    def unsubscribe(self) -> None:
        """As rq's, without waiting up to 1 s for its pubsub thread: a daemon that may sit
        in a 60 s wait for messages and leaves by itself once stopped. A burst run (tests,
        bench/) paid that second one time in three: 3,000 instead of 15,000 pairs/s."""
        if self.pubsub_thread:
            self.pubsub.unsubscribe()
            self.pubsub_thread.stop()
            self.pubsub_thread.join(timeout=0.05)

    def drained(self) -> None:
        """The stop finished in time: no forced exit."""
        if self._deadline is not None:
            self._deadline.cancel()


def _every(interval: float, call: Callable[[], None]) -> None:
    while True:
        time.sleep(interval)
        call()


def run_one(cfg: Config, burst: bool, name: str | None = None, run: str | None = None) -> bool:
    """One worker process: compares batches until SIGTERM (or, in burst mode, until the
    queue is empty); waits for Redis with backoff when it is away at start or goes away,
    logging each change once."""
    assert cfg.redis_url is not None
    # Every Redis call gives up the GIL; with the default 5 ms switch interval, getting it
    # back from RQ's pubsub and the keeper's threads cost ms per round trip (py-spy:
    # `send_packed_command` 23% of the worker; starting the keeper ~3 ms of an idle burst
    # run's 10, bench/README.md).
    sys.setswitchinterval(min(sys.getswitchinterval(), jobs.GIL_SWITCH_INTERVAL))
    ctx = jobs.configure(cfg, run)
    waiting.check_password(store.connect(cfg.redis_url))  # refused: fail now, not wait
    log.info("worker %s: comparing batches from Redis %s%s; config %s", name or os.getpid(),
             waiting.where(cfg.redis_url), " until the queue is empty" if burst else "",
             logs.digest(cfg))
    progress = logs.Progress(log, f"worker {name or os.getpid()}",
                             lambda: {"batches": ctx.batches, "pairs": ctx.pairs},
                             {"batches": ("batches",), "pairs": ("pairs",)})
    if not burst:
        threading.Thread(target=_every, args=(cfg.log_interval, progress.log_line), daemon=True,
                         name="diffsvc-worker-progress").start()
    state = waiting.RedisState(cfg.redis_url, log, "worker")
    delays = waiting.backoff(0.5, RECONNECT_WAIT)
    while True:
        connection = store.connect(cfg.redis_url, timeout=30)
        if not burst:
            waiting.wait_for(connection, state)
        worker = DrainingWorker([jobqueue.queue(connection, run)], connection=connection,
                                name=name)
        keeper = recovery.Keeper(store.connect(cfg.redis_url), worker.name)
        try:
            with contextlib.suppress(RedisError):
                recovery.recover(connection)  # jobs of workers that died before we started
            keeper.start()
            worked = worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
        except StopRequested:  # SIGTERM while bootstrapping, before work()'s own loop
            worked = False
        except (RedisError, OSError) as exc:
            if burst:
                raise
            state.unreachable(exc, RECONNECT_WAIT)
            worked = False
        finally:
            keeper.stop()
            connection.close()
        if burst or worker.stop_asked or worker._stop_requested:
            worker.drained()
            return worked
        # work() returned on its own: it lost Redis mid-job or met an unexpected error
        time.sleep(delays())
