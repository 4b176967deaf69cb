"""The diffsvc benchmark: one command, everything started here, one table.

    python -m bench.run                 # about 3 minutes; --seconds 1 for a quick look

Starts nginx (the upstreams: a 1.9 KB JSON file, one worker process; and nginx `mirror` as
the reference), a candidate that answers after 50 ms, a dead candidate (a closed port),
redis-server, diffsvc gateway and workers, and measures every row in the same run. See
bench/README.md for the method and the results."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from diffsvc import config
from diffsvc.ops.embedded import EmbeddedRedis, free_port
from diffsvc.storage import jobqueue, keys, store

from . import pairs, workers_bench
from .loadgen import Result, paced, wrk
from .services import API_PATH, CANDIDATES, Services, cpu_seconds, rss_mb


def progress(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Sampler:
    """Peak (and first/last) RSS of a process tree, sampled every 100 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples = pid, [rss_mb(pid)]  # (total, largest process) in MB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.samples.append(rss_mb(self.pid))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Cpu:
    """CPU seconds a process tree used inside the `with` block."""

    def __init__(self, pid: int) -> None:
        self.pid, self.seconds = pid, 0.0

    def __enter__(self) -> Cpu:
        self.seconds = cpu_seconds(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = cpu_seconds(self.pid) - self.seconds


def lag_ms(redis_url: str) -> tuple[float, float, int]:
    """p50/p99 of compared_at - captured_at over every comparison in Redis, and the count."""
    r = store.connect(redis_url, timeout=30)
    ids = [k.decode().rsplit(":", 1)[1]
           for k in r.scan_iter(match=keys.comparison("*"), count=1000)]
    lags = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        comps = store.load_comparisons(r, chunk)
        exes = store.load_exchanges(r, chunk)
        for c, x in zip(comps, exes, strict=True):
            if c and x:
                lags.append((c.compared_at - x.captured_at) * 1000)
    lags.sort()
    if not lags:
        return 0.0, 0.0, 0
    return lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))], len(lags)


def wait_drained(redis_url: str, timeout: float) -> None:
    r = store.connect(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if jobqueue.depth(r) == 0:
            time.sleep(0.5)  # the last job finishes
            return
        time.sleep(0.2)
    raise RuntimeError("workers did not drain the queue")


def measure(args: argparse.Namespace) -> dict[str, object]:
    secs = args.seconds
    out: dict[str, object] = {"load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="diffsvc-bench-") as tmpdir, \
            EmbeddedRedis() as redis_url, \
            Services(Path(tmpdir), pairs.body_bytes(), args.processes) as svc:
        r = store.connect(redis_url)
        direct_url = f"http://127.0.0.1:{svc.primary}{API_PATH}"
        progress(f"direct: wrk {secs:g}s")
        out["direct"] = wrk(direct_url, secs, args.connections)
        progress("direct: 500 requests/s")
        out["direct@500"] = paced(direct_url, 500, secs)
        for name in CANDIDATES:
            progress(f"nginx mirror, {name} candidate: wrk {secs:g}s")
            with Cpu(svc.mirror_pid) as cpu:
                out[f"mirror/{name}"] = wrk(f"http://127.0.0.1:{svc.mirror[name]}{API_PATH}",
                                            secs, args.connections)
            out[f"cpu/mirror/{name}"] = cpu.seconds
        for name in CANDIDATES:
            r.flushdb()
            port = free_port()
            gw = svc.gateway(name, redis_url, port)
            url = f"http://127.0.0.1:{port}{API_PATH}"
            progress(f"diffsvc gateway, {name} candidate: wrk {secs:g}s")
            with Sampler(gw.pid) as mem, Cpu(gw.pid) as cpu:
                out[f"diffsvc/{name}"] = wrk(url, secs, args.connections)
            out[f"cpu/diffsvc/{name}"] = cpu.seconds
            out[f"memory/{name}"] = mem.samples
            time.sleep(1.2)  # the gateway writes its counters every 0.5 s
            out[f"counters/{name}"] = store.gateway_counters(r)
            if name == "fast":
                r.flushdb()
                progress("diffsvc gateway: 500 requests/s")
                out["diffsvc@500"] = paced(url, 500, secs)
                r.flushdb()
                cfg_file = Path(tmpdir) / "worker.yaml"
                config.write_file(config.load(overrides={"redis_url": redis_url,
                                                         "ignore": pairs.IGNORE}), cfg_file)
                worker = svc.workers(cfg_file)
                time.sleep(0.5)
                progress("diffsvc gateway + worker: 1,000 requests/s, lag capture → counted")
                out["lag@1000"] = paced(url, 1000, secs)
                wait_drained(redis_url, 60)
                out["lag"] = lag_ms(redis_url)
                svc.stop(worker, 1)  # idle; `diffsvc worker` is slow to honour SIGTERM
            svc.stop(gw)
        r.flushdb()
        progress(f"workers: {args.pairs} recorded pairs")
        out["workers"] = workers_bench.run(redis_url, args.pairs)
    out["load_after"] = os.getloadavg()
    return out


DROPS = ("shadow_dropped", "capture_dropped", "capture_failed")
LABELS = {"fast": "fast", "slow": "50 ms", "dead": "dead (refused)",
          "hung": "hung (never answers)"}


def table(m: dict[str, object], processes: int) -> str:
    rows: list[tuple[str, str, str, str, str]] = []
    fmt_r: Callable[[Result], tuple[str, str, str]] = lambda x: (  # noqa: E731
        f"{x.rps:,.0f}" + (f" ({x.errors} err)" if x.errors else ""),
        f"{x.p50_ms:.2f}", f"{x.p99_ms:.2f}")
    direct = m["direct"]
    assert isinstance(direct, Result)
    rows.append(("direct to upstream (nginx, static 1.9 KB JSON)", *fmt_r(direct), ""))
    for name, label in LABELS.items():
        mir, dsv = m[f"mirror/{name}"], m[f"diffsvc/{name}"]
        assert isinstance(mir, Result) and isinstance(dsv, Result)
        rows.append((f"nginx mirror, {label} candidate", *fmt_r(mir), ""))
        fast = m["diffsvc/fast"]
        assert isinstance(fast, Result)
        target = ("≥ 1.0× mirror" if name == "fast" else "≥ 5× mirror, ≥ 0.9× own fast")
        ratio = f"{dsv.rps / mir.rps:.2f}× mirror"
        if name != "fast":
            ratio += f", {dsv.rps / fast.rps:.2f}× own fast"
        cpu_m, cpu_d = m[f"cpu/mirror/{name}"], m[f"cpu/diffsvc/{name}"]
        assert isinstance(cpu_m, float) and isinstance(cpu_d, float)
        us_m, us_d = cpu_m / max(1, mir.requests) * 1e6, cpu_d / max(1, dsv.requests) * 1e6
        if us_m and us_d:  # the hung mirror answers a handful: no figure
            ratio += f"; CPU {us_d:.0f} µs/request vs mirror's {us_m:.0f} ({us_m / us_d:.2f}×)"
        counters = m[f"counters/{name}"]
        assert isinstance(counters, dict)
        stored = counters.get("captured", 0) / max(1, counters.get("requests", 1))
        rows.append((f"diffsvc gateway, capture on, {label} candidate", *fmt_r(dsv),
                     f"{ratio} (target {target}); {stored:.0%} captured "
                     f"= {dsv.rps * stored:,.0f} exchanges/s stored"
                     + "".join(f", {k} {counters[k]:,}" for k in DROPS if counters.get(k))))
    d500, g500 = m["direct@500"], m["diffsvc@500"]
    assert isinstance(d500, Result) and isinstance(g500, Result)
    rows.append(("direct at 500 requests/s (paced)", *fmt_r(d500), ""))
    rows.append(("diffsvc at 500 requests/s (paced)", *fmt_r(g500),
                 f"adds {g500.p50_ms - d500.p50_ms:+.2f} ms p50, {g500.p99_ms - d500.p99_ms:+.2f} "
                 "ms p99 (target ≤ 1 / ≤ 3)"))
    lag, lagrun = m["lag"], m["lag@1000"]
    assert isinstance(lag, tuple) and isinstance(lagrun, Result)
    rows.append(("capture → counted lag at 1,000 req/s, 1 worker", f"{lagrun.rps:,.0f}",
                 f"{lag[0]:.1f}", f"{lag[1]:.1f}",
                 f"{lag[2]:,} pairs read back (target p99 < 1000 ms)"))
    for name in ("dead", "hung"):
        mem = m[f"memory/{name}"]
        assert isinstance(mem, list)
        total = [t for t, _ in mem]
        each = f", largest process {max(p for _, p in mem):.0f}" if processes > 1 else ""
        rows.append((f"gateway RSS (MB), {LABELS[name]} candidate, full load", "", "", "",
                     f"start {total[0]:.0f}, peak {max(total):.0f}, end {total[-1]:.0f}{each} "
                     "(target flat, < 150)"))
    w = m["workers"]
    assert isinstance(w, dict)
    rows.append(("parse-only floor (orjson.loads ×2), pairs/s", f"{w['parse']:,.0f}", "", "", ""))
    rows.append(("diffsvc compare(), 1 process, pairs/s", f"{w['compare']:,.0f}", "", "",
                 f"{w['parse'] / w['compare']:.2f}× floor cost"))
    rows.append(("diffsvc worker (Redis+RQ), 1 process, pairs/s", f"{w['worker']:,.0f}", "", "",
                 f"{w['worker'] / w['naive']:.0f}× naive, {w['parse'] / w['worker']:.2f}× floor "
                 f"cost; {w['worker_cpu']:,.0f} pairs per CPU-second, "
                 f"{w['parse_cpu'] / w['worker_cpu']:.2f}× the floor's CPU "
                 "(target ≥ 20,000/s, ≥ 100×, ≤ 3×)"))
    rows.append(("naive deepdiff on every pair, pairs/s", f"{w['naive']:,.0f}", "", "", ""))
    head = ("row", "req/s | pairs/s", "p50 ms", "p99 ms", "vs target")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = [" | ".join(c.ljust(widths[i]) for i, c in enumerate(head)),
             "-+-".join("-" * w_ for w_ in widths)]
    lines += [" | ".join(c.ljust(widths[i]) for i, c in enumerate(row)) for row in rows]
    la, lb = m["load_before"], m["load_after"]
    lines.append(f"processes: {processes} nginx worker(s) / diffsvc gateway process(es); "
                 f"load average before {la[0]:.2f}, after {lb[0]:.2f}")  # type: ignore[index]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="length of each load run (default: 8)")
    parser.add_argument("--connections", type=int, default=32,
                        help="wrk connections (default: 32, with one wrk thread)")
    parser.add_argument("--processes", type=int, default=1,
                        help="nginx worker processes = diffsvc gateway processes (default: 1)")
    parser.add_argument("--pairs", type=int, default=4000,
                        help="recorded pairs in the worker benchmark (default: 4000)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.processes < 1 or args.pairs < 20:
        parser.error("--seconds must be > 0, --processes ≥ 1, --pairs ≥ 20")
    print(table(measure(args), args.processes), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
