"""Soak: steady load for a long time (default 10 minutes) with the candidate flapping between
up and down, then the memory (RSS) of gateway, workers and Redis at start and at end.

    python -m bench.soak [--minutes 10] [--rate 50] [--up 20] [--down 10] [--out FILE]

Everything runs on 127.0.0.1: a private redis-server, primary and candidate (small aiohttp
apps, the candidate killed and started again every --up + --down seconds), `diffsvc gateway`
and `diffsvc worker` as child processes. The client counts every answer that is not
primary's as an error; at the end, every captured exchange still in Redis must be compared.
Not part of the test suite: it takes minutes by design."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from diffsvc import config
from diffsvc.ops.embedded import EmbeddedRedis, free_port
from diffsvc.ops.stack import wait_listening
from diffsvc.storage import jobqueue, store

from .services import rss_mb

ROOT = Path(__file__).resolve().parent.parent


def serve(port: int, flavour: str) -> None:
    """The upstream app: an order as JSON; the candidate's differs in one field now and then."""
    from aiohttp import web

    counter = 0

    async def order(request: web.Request) -> web.Response:
        nonlocal counter
        counter += 1
        oid = request.match_info["id"]
        price = 10.0 if flavour == "primary" or counter % 20 else 10.5
        return web.json_response({"id": oid, "price": price, "items": [{"sku": "a", "n": 1}] * 5,
                                  "request_id": f"{flavour}-{counter}"})

    app = web.Application()
    app.router.add_get("/api/orders/{id}", order)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def spawn(*args: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=open(log, "ab"),  # noqa: SIM115
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def load(url: str, rate: float, seconds: float, stats: dict[str, Any]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        start = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()

        async def one(i: int) -> None:
            try:
                async with session.get(f"{url}/api/orders/{i % 1000}",
                                       timeout=aiohttp.ClientTimeout(total=30)) as resp:
                    body = await resp.json()
                    ok = resp.status == 200 and body["request_id"].startswith("primary-")
            except Exception:
                ok = False
            stats["sent"] += 1
            stats["errors"] += 0 if ok else 1

        i = 0
        while (now := time.monotonic() - start) < seconds:
            due = i / rate
            if due > now:
                await asyncio.sleep(due - now)
            task = asyncio.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.gather(*tasks)


async def flapping(port: int, up: float, down: float, seconds: float, tmp: Path,
                   stats: dict[str, Any]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        proc = spawn("-m", "bench.soak", "--serve", str(port), "--flavour", "candidate",
                     log=tmp / "candidate.log")
        await asyncio.sleep(up)
        proc.kill()
        proc.wait()
        stats["flaps"] += 1
        await asyncio.sleep(down)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    parser.add_argument("--up", type=float, default=20.0, help="seconds the candidate is up")
    parser.add_argument("--down", type=float, default=10.0, help="seconds the candidate is down")
    parser.add_argument("--retention", default="120s", help="retention of stored exchanges")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--flavour", default="primary", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.flavour)
        return 0

    seconds = args.minutes * 60
    tmp = Path(tempfile.mkdtemp(prefix="diffsvc-soak-"))
    redis = EmbeddedRedis()
    with redis as redis_url:
        assert redis.process is not None
        redis_pid = redis.process.pid
        p_port, c_port, g_port = free_port(), free_port(), free_port()
        cfg = config.load(overrides={
            "redis_url": redis_url, "primary": f"http://127.0.0.1:{p_port}",
            "candidate": f"http://127.0.0.1:{c_port}", "listen": f"127.0.0.1:{g_port}",
            "shadow_timeout": "1s", "retention": args.retention,
            "ignore": {"fields": ["$.request_id"], "headers": []}})
        cfg = replace(cfg, workers=1)
        config.write_file(cfg, tmp / "config.yaml")
        primary = spawn("-m", "bench.soak", "--serve", str(p_port), log=tmp / "primary.log")
        wait_listening(f"127.0.0.1:{p_port}", primary)
        gateway = spawn("-m", "diffsvc", "gateway", "--config", str(tmp / "config.yaml"),
                        log=tmp / "gateway.log")
        worker = spawn("-m", "diffsvc", "worker", "--config", str(tmp / "config.yaml"),
                       log=tmp / "worker.log")
        wait_listening(cfg.listen, gateway)
        stats: dict[str, Any] = {"sent": 0, "errors": 0, "flaps": 0}

        def memory() -> dict[str, float]:
            return {"gateway_mb": round(rss_mb(gateway.pid)[0], 1),
                    "workers_mb": round(rss_mb(worker.pid)[0], 1),  # the worker's forks too
                    "redis_mb": round(rss_mb(redis_pid)[0], 1)}

        series: list[dict[str, float]] = []

        async def sample() -> None:
            while True:
                await asyncio.sleep(60)
                series.append({"t_s": round(time.monotonic() - started), **memory()})

        async def run() -> dict[str, float]:
            warm = asyncio.create_task(load(f"http://{cfg.listen}", args.rate, seconds, stats))
            flap = asyncio.create_task(flapping(c_port, args.up, args.down, seconds, tmp, stats))
            sampler = asyncio.create_task(sample())
            await asyncio.sleep(min(30.0, seconds / 10))  # start = after a short warm-up
            start = memory()
            await asyncio.gather(warm, flap)
            sampler.cancel()
            return start

        started = time.monotonic()
        start_mem = asyncio.run(run())
        end_mem = memory()
        r = store.connect(redis_url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and jobqueue.depth(r) > 0:
            time.sleep(0.5)
        stop(gateway)
        time.sleep(2)
        stop(worker)
        stop(primary)
        counters = store.gateway_counters(r)
        compared = sum(s["pairs"] for s in store.endpoint_stats(r).values())
        result = {
            "minutes": round((time.monotonic() - started) / 60, 2), "rate": args.rate,
            "requests": stats["sent"], "client_errors": stats["errors"],
            "candidate_flaps": stats["flaps"], "mirrored": counters.get("mirrored", 0),
            "captured": counters.get("captured", 0),
            "capture_failed": counters.get("capture_failed", 0),
            "shadow_errors": counters.get("shadow_error", 0), "compared": compared,
            "rss_start": start_mem, "rss_end": end_mem,
            "rss_drift_mb": {k: round(end_mem[k] - start_mem[k], 1) for k in start_mem},
            "rss_every_minute": series,  # Redis grows until `retention` is full, then levels
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
