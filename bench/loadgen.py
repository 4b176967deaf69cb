"""Load generators: `wrk` for throughput (closed loop, as fast as the server answers) and a
constant-rate generator for latency at a fixed request rate.

wrk2 is not packaged in Debian, so `paced()` is an open-loop generator on raw asyncio
connections (uvloop): request i is due at t0 + i/rate, and its latency is measured from
that due time, not from when it was sent, so a stalled server is charged for the requests
queued behind it (no coordinated omission). Its own cost is paid equally by every target
it is pointed at, so the difference between two targets is what the target adds."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    requests: int = 0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> Result:
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        errors += sum(int(x) for x in m.groups())
    return Result(rps, p50, p99, errors, total)


def wrk(url: str, seconds: float, connections: int = 32, threads: int = 1) -> Result:
    """One wrk run. wrk exits 1 before it measures when its trial connect fails ("unable to
    connect"), which a loaded machine can cause once; that is tried again, twice at most."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", url]
    for _ in range(3):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode == 0:
            return parse_wrk(done.stdout)
        time.sleep(0.5)
    raise RuntimeError(f"wrk {url} failed (exit {done.returncode}): "
                       f"{(done.stderr or done.stdout).strip()[-500:]}")


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.need = -1
        self.status = 0
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.need < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            m = re.search(rb"content-length:\s*(\d+)", head)
            self.status = int(head[9:12])
            self.need = end + 4 + (int(m.group(1)) if m else 0)
        if len(self.buffer) >= self.need and self.waiter and not self.waiter.done():
            self.buffer = self.buffer[self.need:]
            self.need = -1
            self.waiter.set_result(self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("closed"))
        self.transport = None


async def _paced(url: str, rate: float, seconds: float) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    raw = (f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
           "Accept: application/json\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    idle: list[_Conn] = []
    latencies: list[float] = []
    errors = 0

    async def one(due: float) -> None:
        nonlocal errors
        conn = idle.pop() if idle else None
        try:
            if conn is None or conn.transport is None:
                _, conn = await loop.create_connection(_Conn, host, port)
            assert conn.transport is not None
            conn.waiter = loop.create_future()
            conn.transport.write(raw)
            status = await conn.waiter
            latencies.append((time.perf_counter() - due) * 1000)
            if status >= 400:
                errors += 1
            idle.append(conn)
        except (OSError, ConnectionError):
            errors += 1

    n = int(rate * seconds)
    tasks = []
    t0 = time.perf_counter() + 0.05
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    for conn in idle:
        if conn.transport:
            conn.transport.close()
    latencies.sort()
    if not latencies:
        return Result(0, 0, 0, errors, n)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return Result(len(latencies) / seconds, pick(0.5), pick(0.99), errors, n)


def paced(url: str, rate: float, seconds: float) -> Result:
    """Send GET url at `rate` requests/s for `seconds`; latency from each request's due time."""
    import uvloop

    return uvloop.run(_paced(url, rate, seconds))
