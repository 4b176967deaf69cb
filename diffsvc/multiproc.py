"""`diffsvc gateway --processes N`: N forked copies of one server sharing a port.

Each child binds its own listening socket with SO_REUSEPORT, so the kernel spreads new
connections across them; each has its own event loop, client session, capture buffer and
Redis connection (Redis is the only shared state). The children run in their own process
group and die with the parent; SIGTERM or SIGINT to the parent is forwarded once as SIGTERM,
and each child drains its shadows and writes its buffer before it exits."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

PR_SET_PDEATHSIG = 1
_FORWARDED = {signal.SIGTERM, signal.SIGINT}


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _child(target: Callable[[], None]) -> None:
    # not the parent's forwarding handlers (signals are blocked across the fork, so none
    # can reach them): a SIGTERM before the server sets its own handlers just ends the child
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
    os.setpgrp()  # a Ctrl-C reaches the parent only; it forwards one SIGTERM
    _die_with_parent()
    target()


def run(processes: int, target: Callable[[], None]) -> int:
    """Run `target` in `processes` forked children until they exit; the worst exit code."""
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_child, args=(target,), name=f"diffsvc-gateway-{i}")
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

    while any(child.is_alive() for child in children):
        wait([child.sentinel for child in children if child.is_alive()])
        if not stopping and any(not child.is_alive() for child in children):
            stop(signal.SIGTERM, None)  # one child died on its own: stop the others too
    for child in children:
        child.join()
    return max((c.exitcode or 0) for c in children)
