"""`diffsvc up`: the whole stack on one machine, as child processes under one supervisor.

An embedded redis-server when no Redis URL is configured; the gateway; the workers. Ctrl-C
or SIGTERM stops the children (SIGTERM, then SIGKILL after a timeout) in reverse order."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from diffsvc import config
from diffsvc.config import Config, split_listen
from diffsvc.errors import EXIT_SOFTWARE
from diffsvc.gateway import collect
from diffsvc.ops.embedded import EmbeddedRedis
from diffsvc.report import server

STOP_TIMEOUT = 10.0


class Stack:
    def __init__(self, cfg: Config, *, quiet: bool = False) -> None:
        self.cfg = cfg
        self.quiet = quiet
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._stop_requested = False

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = subprocess.DEVNULL if self.quiet else None
        proc = subprocess.Popen([sys.executable, "-m", "diffsvc", *args], stdout=out,
                                start_new_session=True)
        self.children.append((name, proc))
        return proc

    def start(self, config_path: Path, *, report: bool = False) -> None:
        cfg_args = ("--config", str(config_path))
        self.spawn("workers", "worker", *cfg_args)
        self.spawn("gateway", "gateway", *cfg_args)
        wait_listening(self.cfg.listen, self.children[-1][1])
        if report:
            self.spawn("report", "serve", *cfg_args)
            wait_listening(self.cfg.report_listen, self.children[-1][1])

    def exit_status(self, name: str) -> int:
        """The status `up` exits with when child `name` died: its own (a gateway on a busy
        port: 69), or EXIT_SOFTWARE when it left without one (0, or killed by a signal)."""
        code = dict(self.children)[name].returncode
        return code if code is not None and code > 0 else EXIT_SOFTWARE

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_requested = True

    def wait(self, until: float | None = None) -> str | None:
        """Block until a stop is asked for or `until`; the name of a child that died, if any."""
        while not self._stop_requested and (until is None or time.monotonic() < until):
            for name, proc in self.children:
                if proc.poll() is not None:
                    return name
            time.sleep(0.1)
        return None

    def stop(self) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for _, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_listening(listen: str, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    host, port = split_listen(listen)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with status {proc.returncode} before listening "
                               f"on {listen}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {listen} after {timeout:g} s")


@contextlib.contextmanager
def running(cfg: Config, *, quiet: bool = False,
            report: bool = False) -> Iterator[tuple[Stack, Config]]:
    """The stack, with an embedded Redis when none is configured; stopped on exit."""
    with contextlib.ExitStack() as resources:
        if cfg.redis_url is None:
            cfg = dataclasses.replace(cfg, redis_url=resources.enter_context(EmbeddedRedis()))
            if not quiet:
                print(f"embedded redis-server at {cfg.redis_url}", flush=True)
        tmp = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="diffsvc-")))
        # quiet (the demo): the children's start and progress lines are not shown
        config.write_file(dataclasses.replace(cfg, log_level="warning") if quiet else cfg,
                          tmp / "config.yaml")
        stack = Stack(cfg, quiet=quiet)
        resources.callback(stack.stop)
        stack.start(tmp / "config.yaml", report=report)
        yield stack, cfg


def up(cfg: Config) -> int:
    cfg.require("candidate")
    if cfg.mode == "collect":  # exchanges come from a proxy, with production's answers
        collect.check_access(cfg)
    else:
        cfg.require("primary")
    server.check_access(cfg)  # before anything starts
    with running(cfg, report=True) as (stack, cfg):
        signal.signal(signal.SIGINT, stack.request_stop)
        signal.signal(signal.SIGTERM, stack.request_stop)
        print(f"diffsvc up: gateway http://{cfg.listen}, {cfg.workers} worker(s), "
              f"Redis {cfg.redis_url}. Ctrl-C stops.", flush=True)
        print(f"diffsvc up: report at {server.url(cfg)}", flush=True)
        died = stack.wait()
        if died:
            print(f"diffsvc up: {died} exited; stopping the stack", file=sys.stderr)
            return stack.exit_status(died)
    print("diffsvc up: stopped", flush=True)
    return 0
