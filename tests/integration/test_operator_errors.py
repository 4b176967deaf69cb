"""Expected failures, as an operator meets them: one line on stderr (what failed, where, what
to do), no traceback (unless --debug), and an exit status with one meaning (sysexits).
Processes that wait for Redis log its going and coming once each."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from diffsvc.errors import (
    EXIT_CONFIG,
    EXIT_DATAERR,
    EXIT_NOINPUT,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from diffsvc.ops.embedded import EmbeddedRedis, find_redis_server, free_port
from diffsvc.storage import rulestore, store
from tests.integration.test_cli import _env, run
from tests.integration.test_gateway import (  # noqa: F401  (upstreams: a fixture)
    counters,
    fetch,
    gateway_for,
    upstreams,
    wait_until,
)

DIFFSVC = (sys.executable, "-m", "diffsvc")


def one_line_failure(done: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def dead_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_gateway_on_a_busy_port(busy_port: int) -> None:
    done = run(*DIFFSVC, "gateway", "--listen", f"127.0.0.1:{busy_port}", "--primary",
               "http://127.0.0.1:9", "--candidate", "http://127.0.0.1:10", "--redis-url", dead_redis())
    one_line_failure(done, EXIT_UNAVAILABLE, f"127.0.0.1:{busy_port}", "already in use",
                     "choose another")
    assert "listening" not in done.stdout


def test_gateway_processes_on_a_busy_port(busy_port: int) -> None:
    done = run(*DIFFSVC, "gateway", "--listen", f"127.0.0.1:{busy_port}", "--primary",
               "http://127.0.0.1:9", "--candidate", "http://127.0.0.1:10", "--redis-url", dead_redis(),
               "--processes", "2")
    assert done.returncode == EXIT_UNAVAILABLE and "Traceback" not in done.stderr, done.stderr
    assert "already in use" in done.stderr


def test_serve_on_a_busy_port(busy_port: int, redis_url: str) -> None:
    done = run(*DIFFSVC, "serve", "--listen", f"127.0.0.1:{busy_port}", "--redis-url", redis_url)
    one_line_failure(done, EXIT_UNAVAILABLE, f"127.0.0.1:{busy_port}", "already in use")
    assert "diffsvc report at" not in done.stdout


def test_up_on_a_busy_port_exits_as_the_gateway_does(busy_port: int, redis_url: str) -> None:
    """`up` passes on the status of the child that stopped it (69), not a gate's "fail" (1)."""
    done = run(*DIFFSVC, "up", "--listen", f"127.0.0.1:{busy_port}", "--primary",
               "http://127.0.0.1:9", "--candidate", "http://127.0.0.1:10", "--redis-url",
               redis_url, "--report-listen", f"127.0.0.1:{free_port()}")
    assert done.returncode == EXIT_UNAVAILABLE, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "already in use" in done.stderr, done.stderr


@pytest.mark.parametrize("command", [("report",), ("gate",), ("rules", "export")], ids=" ".join)
def test_redis_unreachable(command: tuple[str, ...]) -> None:
    url = dead_redis()
    done = run(*DIFFSVC, *command, "--redis-url", url)
    one_line_failure(done, EXIT_UNAVAILABLE, "Redis unreachable", url.split("/")[2], "redis_url")


def test_debug_shows_the_traceback() -> None:
    done = run(*DIFFSVC, "report", "--redis-url", dead_redis(), "--debug")
    assert done.returncode == EXIT_UNAVAILABLE
    assert "Traceback" in done.stderr and "Redis unreachable" in done.stderr.splitlines()[-1]


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([find_redis_server(), "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--dir", str(tmp_path), "--requirepass", "s3cret"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize("command", ["report", "worker", "serve"])
@pytest.mark.parametrize("password", ["wrong", None])
def test_redis_refusing_the_password(redis_with_password: int, command: str,
                                     password: str | None) -> None:
    auth = f":{password}@" if password else ""
    listen = ("--listen", f"127.0.0.1:{free_port()}") if command == "serve" else ()
    done = run(*DIFFSVC, command, "--redis-url", f"redis://{auth}127.0.0.1:{redis_with_password}/0",
               *listen, timeout=20)
    line = one_line_failure(done, EXIT_CONFIG, "password", "redis_url")
    assert "s3cret" not in line


def test_grafana_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = run(*DIFFSVC, "dashboards", "push", "--grafana-url", url)
    one_line_failure(done, EXIT_UNAVAILABLE, f"Grafana at {url} unreachable", "--grafana-url")


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.har"
    done = run(*DIFFSVC, "replay", str(missing), "--primary", "http://127.0.0.1:9",
               "--candidate", "http://127.0.0.1:9")
    one_line_failure(done, EXIT_NOINPUT, str(missing), "no such file")
    done = run(*DIFFSVC, "report", "--config", str(tmp_path / "nope.yaml"))
    one_line_failure(done, EXIT_CONFIG, "nope.yaml", "cannot read")


def test_bad_json_lines(tmp_path: Path) -> None:
    """Not UTF-8 (was a traceback, exit 70), or a body_base64 that is not base64 (was sent
    as whatever b64decode made of it): one line naming the file and line, exit 65."""
    lines = tmp_path / "bad.jsonl"
    for data, words in ((b'{"url": "/a"}\n\xff\xfe\n', (f"{lines}:2", "UTF-8")),
                        (b'{"url": "/a", "body_base64": "!!"}\n', (f"{lines}:1", "base64"))):
        lines.write_bytes(data)
        done = run(*DIFFSVC, "replay", str(lines), "--primary", "http://127.0.0.1:9",
                   "--candidate", "http://127.0.0.1:9")
        one_line_failure(done, EXIT_DATAERR, *words)


def test_bad_har(tmp_path: Path) -> None:
    har = tmp_path / "bad.har"
    har.write_text(json.dumps({"log": {"entries": [{"request": {"method": "GET", "url": 7}}]}}))
    done = run(*DIFFSVC, "replay", str(har), "--primary", "http://127.0.0.1:9",
               "--candidate", "http://127.0.0.1:9")
    one_line_failure(done, EXIT_DATAERR, f"{har}: log.entries[0].request", "url")
    for text in ("{not json", '{"log": {"entries": 5}}', "[1]", '{"log": 3}'):
        har.write_text(text)
        done = run(*DIFFSVC, "replay", str(har), "--primary", "http://127.0.0.1:9",
                   "--candidate", "http://127.0.0.1:9")
        line = one_line_failure(done, EXIT_DATAERR, str(har), "not a HAR file")
        assert "object" not in line, line  # no Python internals ('int' object is not ...)


def test_usage_errors_exit_64() -> None:
    one_line_failure(run(*DIFFSVC, "replay", "x.har", "--concurrency", "0", "--primary",
                         "http://127.0.0.1:9", "--candidate", "http://127.0.0.1:9"),
                     EXIT_USAGE, "--concurrency")
    done = run(*DIFFSVC, "gateway", "--no-such-flag")
    assert done.returncode == EXIT_USAGE and "unrecognized arguments" in done.stderr


def test_unknown_endpoint_lists_the_known_ones(redis_url: str, r: Redis) -> None:
    from diffsvc.core.models import Comparison

    store.record_comparisons(r, [Comparison("a", "GET /api/users/{id}", "match"),
                                 Comparison("b", "GET /health", "match")], 60, {}, {})
    assert store.endpoint_names(r) == ["GET /api/users/{id}", "GET /health"]
    for command in (("report",), ("gate",), ("rules", "suggest")):
        done = run(*DIFFSVC, *command, "--redis-url", redis_url, "--endpoint", "GET /api/user/{id}")
        one_line_failure(done, EXIT_USAGE, "did you mean 'GET /api/users/{id}'",
                         "'GET /health'")


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 20) -> list[str]:
    """stderr lines of proc up to and including the first one containing text."""
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} in {seen}")


def test_worker_waits_for_redis_and_logs_each_change_once() -> None:
    port = free_port()
    proc = subprocess.Popen([*DIFFSVC, "worker", "--redis-url", f"redis://127.0.0.1:{port}/0"],
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        first = wait_for_line(proc, "unreachable")
        time.sleep(1.5)  # several retries: none logged again
        with EmbeddedRedis(port=port):
            later = wait_for_line(proc, "reachable again")
            assert proc.poll() is None
        assert not any("unreachable" in line for line in later[:-1]), later
        assert not any("Traceback" in line for line in first + later)
    finally:
        proc.terminate()
        proc.wait(15)


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serve_starts_without_redis_answers_503_and_recovers() -> None:
    port, listen = free_port(), free_port()
    proc = subprocess.Popen([*DIFFSVC, "serve", "--redis-url", f"redis://127.0.0.1:{port}/0",
                             "--listen", f"127.0.0.1:{listen}"],
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        seen = wait_for_line(proc, "unreachable")  # and the start line, in either order
        if not any("report server at" in line for line in seen):
            wait_for_line(proc, "report server at")
        assert get(f"http://127.0.0.1:{listen}/api/v1/summary") == 503
        with EmbeddedRedis(port=port):
            wait_for_line(proc, "reachable again")
            assert get(f"http://127.0.0.1:{listen}/api/v1/summary") == 200
    finally:
        proc.terminate()
        proc.wait(15)


def test_gateway_starts_without_redis_and_captures_once_it_comes(
        serve, upstreams, make_config, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    port = free_port()
    prod, cand = upstreams()
    cfg = make_config(primary=prod.url, candidate=cand.url,
                      redis_url=f"redis://127.0.0.1:{port}/0")
    caplog.set_level("WARNING", logger="diffsvc.capture")
    gw = gateway_for(serve, cfg)
    assert fetch(gw.url, "/api/users/1")[0] == 200  # the client never notices
    wait_until(lambda: counters(gw).get("capture_failed", 0) >= 1, "a failed capture")
    time.sleep(0.6)  # idle flushes (10 ms apart) while Redis is away: no false "back"
    messages = [rec.getMessage() for rec in caplog.records]
    assert sum("cannot write to Redis" in m for m in messages) == 1, messages
    assert not any("Redis is back" in m for m in messages), messages
    with EmbeddedRedis(port=port) as url:
        assert fetch(gw.url, "/api/users/2")[0] == 200
        r = store.connect(url)
        wait_until(lambda: store.gateway_counters(r).get("captured", 0) >= 1, "captured")
        messages = [rec.getMessage() for rec in caplog.records]
        assert sum("Redis is back" in m for m in messages) == 1, messages


def test_data_clear(demo_stack, redis_url: str, r: Redis) -> None:
    before = store.endpoint_names(r)
    assert "GET /api/products/{id}" in before and len(before) == 3
    done = run(*DIFFSVC, "data", "clear", "--redis-url", redis_url, "--endpoint",
               "GET /api/products/{id}")
    assert done.returncode == 0 and "cleared endpoint 'GET /api/products/{id}'" in done.stdout
    assert store.endpoint_names(r) == [n for n in before if n != "GET /api/products/{id}"]
    one_line_failure(run(*DIFFSVC, "data", "clear", "--redis-url", redis_url, "--endpoint",
                         "GET /api/product/{id}"), EXIT_USAGE, "did you mean")
    rule = rulestore.add(r, "$.price")  # a UI-added rule survives
    done = run(*DIFFSVC, "data", "clear", "--redis-url", redis_url)
    assert done.returncode == 0 and "every endpoint" in done.stdout
    assert store.endpoint_names(r) == [] and store.endpoint_stats(r) == {}
    assert rulestore.list_rules(r) == [rule]
