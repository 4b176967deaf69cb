"""N forked copies of one process: `gateway --processes N` and `worker --workers N`.

Gateway children each bind their own listening socket with SO_REUSEPORT, so the kernel
spreads new connections across them; each has its own event loop, client session, capture
buffer and Redis connection (Redis is the only shared state). The children run in their own
process group and die with the parent; SIGTERM or SIGINT to the parent is forwarded once as
SIGTERM, and each child finishes its work (shadows and buffer, or the current job) first."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from diffsvc import gateway
from diffsvc.config import Config
from diffsvc.ops.explain import explain
from workers import main as worker_main

PR_SET_PDEATHSIG = 1
_FORWARDED = {signal.SIGTERM, signal.SIGINT}


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _child(target: Callable[[], object]) -> None:
    # not the parent's forwarding handlers (signals are blocked across the fork, so none
    # can reach them): a SIGTERM before the server sets its own handlers just ends the child
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
    os.setpgrp()  # a Ctrl-C reaches the parent only; it forwards one SIGTERM
    _die_with_parent()
    try:
        target()
    except Exception as exc:  # an expected failure (busy port, Redis): one line, its status
        known = explain(exc)
        if known is None:
            raise
        print(f"diffsvc {multiprocessing.current_process().name}: {known[1]}", file=sys.stderr)
        sys.exit(known[0])


def run(processes: int, target: Callable[[], object], name: str, *,
        one_exit_stops_all: bool = True) -> int:
    """Run `target` in `processes` forked children until they exit; the worst exit status.
    With `one_exit_stops_all`, a child that exits on its own stops the others (a gateway
    serving on fewer processes than asked for is a fault to restart, not to hide)."""
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_child, args=(target,), name=f"{name}-{i}")
                for i in range(processes)]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for child in children:
            if child.pid and child.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
    try:
        for child in children:
            child.start()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)  # a pending one is handled now
    from multiprocessing.connection import wait

    # The list of live children is taken once per round: waiting on an empty list (both
    # died between two is_alive() calls) would block forever.
    while alive := [child for child in children if child.is_alive()]:
        wait([child.sentinel for child in alive])
        if one_exit_stops_all and not stopping and any(not c.is_alive() for c in alive):
            stop(signal.SIGTERM, None)
    return max(_status(child.exitcode, stopping) for child in children)


def _status(exitcode: int | None, stopping: bool) -> int:
    """A child's exit code as a shell status; ended by the SIGTERM we sent counts as 0."""
    if exitcode is None or exitcode >= 0:
        return exitcode or 0
    return 0 if stopping and -exitcode == signal.SIGTERM else 128 - exitcode


def run_gateway(cfg: Config) -> int:
    """The gateway until SIGINT/SIGTERM. With `processes` > 1, that many forked processes
    share the port (SO_REUSEPORT); the exit status is the worst of theirs."""
    if cfg.processes == 1:
        gateway.serve(cfg)
        return 0
    return run(cfg.processes, lambda: gateway.serve(cfg, reuse_port=True), "diffsvc-gateway")


def run_workers(cfg: Config, *, burst: bool = False) -> int:
    """`cfg.workers` workers until the queue is empty (burst) or SIGTERM/SIGINT; the parent
    forwards one SIGTERM and each child finishes its current job (DrainingWorker)."""
    cfg.require("redis_url")
    if cfg.workers == 1:
        worker_main.run_one(cfg, burst)
        return 0
    # a burst worker that finds the queue empty ends on its own; the others still drain
    return run(cfg.workers, lambda: worker_main.run_one(cfg, burst), "diffsvc-worker",
               one_exit_stops_all=not burst)
