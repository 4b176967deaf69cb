"""What long-running processes log: a start line (where they listen or connect, the config
digest), one progress line per log.interval, a warning for a gateway without a candidate,
and JSON lines with --log-format json."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import urllib.request
from typing import Any

from diffsvc import config
from diffsvc.config import logs
from diffsvc.ops.embedded import free_port
from diffsvc.ops.stack import wait_listening
from tests.integration.test_cli import _env
from tests.integration.test_gateway import upstreams  # noqa: F401  (a fixture)


class Lines:
    """The JSON log lines of a child's stderr, read as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with self.changed:
                self.lines.append(json.loads(line))  # every line is one JSON object
                self.changed.notify_all()

    def wait(self, pattern: str, timeout: float = 20) -> dict[str, Any]:
        with self.changed:
            found = self.changed.wait_for(lambda: next(
                (ln for ln in self.lines if re.search(pattern, ln["message"])), None), timeout)
        assert found, f"no {pattern!r} in {self.lines}"
        return found


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "diffsvc", *args, "--log-format", "json",
                             "--log-interval", "1s"], stderr=subprocess.PIPE, text=True,
                            env=_env())


def test_gateway_and_worker_log_start_and_progress(upstreams, redis_url: str) -> None:  # noqa: F811
    prod, cand = upstreams()
    listen = f"127.0.0.1:{free_port()}"
    gateway = spawn("gateway", "--listen", listen, "--primary", prod.url, "--candidate", cand.url,
                    "--redis-url", redis_url, "--flush-interval", "10ms")
    worker = spawn("worker", "--redis-url", redis_url)
    try:
        gw, wk = Lines(gateway), Lines(worker)
        start = gw.wait("listening on")
        assert start["level"] == "info" and start["logger"] == "diffsvc.gateway"
        assert f"http://{listen}" in start["message"] and prod.url in start["message"]
        assert re.search(r"config [0-9a-f]{12}\b", start["message"])
        assert wk.wait(r"comparing batches from Redis 127\.0\.0\.1:\d+/0; config [0-9a-f]{12}")
        wait_listening(listen, gateway)  # type: ignore[arg-type]
        for i in range(3):
            with urllib.request.urlopen(f"http://{listen}/api/users/{i}", timeout=10) as resp:
                resp.read()
        assert gw.wait(r"gateway: [1-9]\d* requests, [1-9]\d* mirrored, 0 dropped")
        assert wk.wait(r"worker \d+: [1-9]\d* batches, [1-9]\d* pairs")
        assert not any(ln["level"] == "warning" for ln in gw.lines), gw.lines
    finally:
        for proc in (gateway, worker):
            proc.terminate()
            proc.wait(15)


def test_gateway_without_candidate_warns(redis_url: str) -> None:
    gateway = spawn("gateway", "--listen", f"127.0.0.1:{free_port()}", "--primary",
                    "http://127.0.0.1:9", "--redis-url", redis_url)
    try:
        warning = Lines(gateway).wait("no candidate")
        assert warning["level"] == "warning" and "--candidate" in warning["message"]
    finally:
        gateway.terminate()
        gateway.wait(15)


def test_digest_names_the_effective_settings() -> None:
    a = config.load(env={}, overrides={"primary": "http://a:1"})
    assert logs.digest(a) == logs.digest(config.load(env={}, overrides={"primary": "http://a:1"}))
    assert logs.digest(a) != logs.digest(config.load(env={}, overrides={"primary": "http://b:1"}))


def test_progress_counts_since_the_last_line() -> None:
    counts = {"requests": 5, "shadow_dropped": 1, "capture_dropped": 2}
    line = logs.Progress(logging.getLogger("t"), "gateway", lambda: counts,
                         {"requests": ("requests",), "dropped": ("shadow_dropped", "capture_dropped")})
    counts.update(requests=12, capture_dropped=4)
    assert line.line().startswith("gateway: 7 requests, 2 dropped in the last ")
    assert line.line().startswith("gateway: 0 requests, 0 dropped")
