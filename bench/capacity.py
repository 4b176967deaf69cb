"""Redis's side of the capacity model: what one exchange costs Redis, measured.

    python -m bench.capacity            # about a minute

One gateway process (fast candidate) under `wrk` for its peak rate, then one worker
draining what it stored. For each stage: Redis commands per exchange (INFO commandstats:
the commands scripts run included) and client round trips per exchange, Redis CPU
(utime + stime of redis-server, /proc) per exchange, and Redis memory per stored exchange
and per comparison (INFO used_memory). bench/README.md turns these into how many gateway
and worker processes one Redis serves, and the memory at the default retention."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from redis import Redis

from diffsvc import config
from diffsvc.ops.embedded import EmbeddedRedis, free_port
from diffsvc.storage import jobqueue, store

from . import pairs
from .loadgen import wrk
from .run import progress, wait_drained
from .services import API_PATH, Services, cpu_seconds


def commands(r: Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(v["calls"])
            for name, v in r.info("commandstats").items()}


class Stage:
    """Redis CPU, commands, round trips and memory across one stage."""

    def __init__(self, r: Redis, pid: int) -> None:
        self.r, self.pid = r, pid

    def __enter__(self) -> Stage:
        self.r.config_resetstat()
        self.cpu, self.mem = cpu_seconds(self.pid), int(self.r.info("memory")["used_memory"])
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.started
        self.cpu = cpu_seconds(self.pid) - self.cpu
        self.mem = int(self.r.info("memory")["used_memory"]) - self.mem
        self.calls = commands(self.r)  # INFO's own calls included: a handful

    def per(self, n: int) -> str:
        top = sorted(self.calls.items(), key=lambda kv: -kv[1])[:6]
        return (f"{self.cpu / n * 1e6:.1f} µs Redis CPU, {sum(self.calls.values()) / n:.2f} "
                f"commands ({', '.join(f'{k} {v / n:.2f}' for k, v in top)}), "
                f"{self.mem / n:,.0f} bytes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--processes", type=int, default=1,
                        help="gateway processes (and nginx workers)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--compress", action="store_true",
                        help="the gateway stores zstd frames (capture_compress)")
    args = parser.parse_args(argv)
    if args.compress:
        os.environ["DIFFSVC_CAPTURE_COMPRESS"] = "true"  # the gateway's environment
    with tempfile.TemporaryDirectory(prefix="diffsvc-capacity-") as tmpdir, \
            EmbeddedRedis() as redis_url, \
            Services(Path(tmpdir), pairs.body_bytes(), args.processes) as svc:
        r = store.connect(redis_url, timeout=30)
        pid = int(r.info("server")["process_id"])
        port = free_port()
        gw = svc.gateway("fast", redis_url, port)
        progress(f"gateway at its peak: wrk {args.seconds:g}s")
        with Stage(r, pid) as gateway:
            gw_cpu = cpu_seconds(gw.pid)
            load = wrk(f"http://127.0.0.1:{port}{API_PATH}", args.seconds, 32)
            time.sleep(1.2)  # the last batch and the counters are written
            gw_cpu = cpu_seconds(gw.pid) - gw_cpu
        stored = store.gateway_counters(r).get("captured", 0)
        svc.stop(gw)
        cfg_file = Path(tmpdir) / "worker.yaml"
        config.write_file(config.load(overrides={"redis_url": redis_url,
                                                 "ignore": pairs.IGNORE}), cfg_file)
        progress(f"{args.workers} worker process(es) draining {stored:,} exchanges")
        with Stage(r, pid) as worker:
            proc = svc.workers(cfg_file, args.workers)
            wait_drained(redis_url, 300)
            w_cpu = cpu_seconds(proc.pid)
        compared = sum(s["pairs"] for s in store.endpoint_stats(r).values())
        svc.stop(proc, 1)
        jobs_left = jobqueue.depth(r)
    print(f"gateway: {load.rps:,.0f} req/s, {stored:,} exchanges stored in "
          f"{gateway.seconds:.1f} s; per exchange: {gateway.per(stored)}; "
          f"Redis CPU {gateway.cpu / gateway.seconds:.0%} of a core; gateway "
          f"{stored / gw_cpu:,.0f} exchanges per CPU-second ({args.processes} process(es))")
    print(f"worker: {compared:,} pairs in {worker.seconds:.1f} s "
          f"({compared / worker.seconds:,.0f}/s, start-up included); per pair: "
          f"{worker.per(compared)}; Redis CPU {worker.cpu / worker.seconds:.0%} of a core; "
          f"workers {compared / w_cpu:,.0f} pairs per CPU-second ({args.workers} process(es), "
          f"start-up included); jobs left {jobs_left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
