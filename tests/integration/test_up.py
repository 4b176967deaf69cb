"""`diffsvc up` as a subprocess against real upstreams: it serves, compares, and SIGTERM stops
every process it started (embedded redis-server included) with exit status 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from diffsvc.ops.embedded import free_port
from diffsvc.storage import store
from tests.conftest import ServedApp
from tests.integration.test_gateway import fetch, upstream, wait_until

STOP_WITHIN = 15.0


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line), from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":  # a zombie is gone, only not yet reaped
            continue
        table[int(entry.name)] = (int(fields[1]), cmdline)
    return table


def descendants(pid: int) -> dict[int, str]:
    table = _process_table()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, cmd) in table.items():
            if ppid == parent and child not in found:
                found[child] = cmd
                frontier.append(child)
    return found


def alive(pids: dict[int, str]) -> dict[int, str]:
    table = _process_table()
    return {pid: cmd for pid, cmd in pids.items() if pid in table and table[pid][1] == cmd}


def test_up_serves_and_stops_cleanly_on_sigterm(serve: Callable[[web.Application], ServedApp]
                                                ) -> None:
    prod, cand = serve(upstream("prod")), serve(upstream("candidate"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFSVC_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "diffsvc", "up", "--primary", prod.url, "--candidate", cand.url,
         "--listen", f"127.0.0.1:{port}", "--flush-interval", "20ms"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        env=env)
    output: list[str] = []
    children: dict[int, str] = {}
    reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        gateway = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert proc.poll() is None, "".join(output)
            try:
                return fetch(gateway, "/api/users/1")[0] == 200
            except OSError:
                return False

        wait_until(answers, "the gateway of `diffsvc up`", timeout=30)
        status, _, body = fetch(gateway, "/api/users/2")
        assert status == 200 and b'"role": "prod"' in body

        # the embedded Redis, the gateway and the worker are all running and compare traffic
        wait_until(lambda: re.search(r"Redis (redis://\S+)", "".join(output)), "the banner")
        match = re.search(r"Redis (redis://\S+?)\.?\s", "".join(output))
        assert match, "".join(output)
        r = store.connect(match.group(1))
        wait_until(lambda: sum(s["pairs"] for s in store.endpoint_stats(r).values()) >= 2,
                   "the worker to compare the mirrored requests", timeout=30)
        r.close()
        children = descendants(proc.pid)
        assert any("redis-server" in cmd for cmd in children.values()), children
        assert any(" gateway " in f" {cmd} " for cmd in children.values()), children
        assert any(" worker " in f" {cmd} " for cmd in children.values()), children

        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(STOP_WITHIN)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"`diffsvc up` still running {STOP_WITHIN:g} s after SIGTERM: "
                                 + "".join(output)) from None
        assert code == 0, "".join(output)
        reader.join(5)
        assert not alive(children), f"left behind: {alive(children)}"
        assert "Traceback" not in "".join(output), "".join(output)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in alive(children):  # only when the test failed: leave nothing behind
            os.kill(pid, signal.SIGKILL)
