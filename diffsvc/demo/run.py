"""`diffsvc demo`: sample prod and candidate upstreams, the whole stack, realistic traffic
through the gateway for `--duration` seconds, then the report."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp

from diffsvc.config import Config
from diffsvc.ops import stack
from diffsvc.ops.embedded import free_port
from diffsvc.report import data, formats
from diffsvc.report.verdict import Criteria
from diffsvc.storage import jobqueue, store

# Volatile fields of the sample service, ignored by rule: the report must not show them.
DEMO_IGNORE = {"fields": ["$.request_id", "$..generated_at", "$..updated_at", "$.took_ms"],
               "headers": []}
CONCURRENCY = 8
DRAIN_TIMEOUT = 20.0


def _paths() -> Iterator[str]:
    rnd = random.Random(7)
    words = ["shoes", "lamp", "desk", "coffee", "book", "chair"]
    while True:
        roll = rnd.random()
        if roll < 0.4:
            yield f"/api/users/{rnd.randint(1, 500)}"
        elif roll < 0.8:
            yield f"/api/products/{rnd.randint(1, 50)}"
        elif roll < 0.95:
            yield f"/api/search?q={rnd.choice(words)}"
        else:
            yield "/health"


async def drive(base_url: str, duration: float) -> int:
    """Send GETs through the gateway for `duration` seconds; returns the number sent."""
    paths = _paths()
    sent = 0
    deadline = time.monotonic() + duration
    async with aiohttp.ClientSession() as session:
        async def client() -> None:
            nonlocal sent
            while time.monotonic() < deadline:
                async with session.get(base_url + next(paths)) as resp:
                    await resp.read()
                sent += 1
                await asyncio.sleep(0.005)

        async def progress() -> None:
            while time.monotonic() < deadline:
                await asyncio.sleep(1)
                left = max(0, deadline - time.monotonic())
                print(f"\r  {sent} requests sent, {left:4.0f} s left", end="", flush=True)

        await asyncio.gather(progress(), *(client() for _ in range(CONCURRENCY)))
    print()
    return sent


@contextlib.contextmanager
def sample_upstreams() -> Iterator[tuple[str, str]]:
    procs = []
    urls = []
    try:
        for role in ("prod", "candidate"):
            port = free_port()
            proc = subprocess.Popen([sys.executable, "-m", "diffsvc.demo.upstream", "--role", role,
                                     "--port", str(port)], start_new_session=True)
            procs.append(proc)
            stack.wait_listening(f"127.0.0.1:{port}", proc)
            urls.append(f"http://127.0.0.1:{port}")
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(5)


def wait_drained(cfg: Config, timeout: float = DRAIN_TIMEOUT) -> None:
    """Until every captured exchange has been compared (or `timeout`)."""
    assert cfg.redis_url
    r = store.connect(cfg.redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        captured = store.gateway_counters(r).get("captured", 0)
        compared = sum(s["pairs"] for s in store.endpoint_stats(r).values())
        if captured and compared >= captured and jobqueue.depth(r) == 0:
            return
        time.sleep(0.2)


def run(cfg: Config, duration: float) -> int:
    with sample_upstreams() as (prod, candidate):
        cfg = dataclasses.replace(
            cfg, primary=prod, candidate=candidate, listen=f"127.0.0.1:{free_port()}",
            ignore={"fields": cfg.ignore["fields"] + DEMO_IGNORE["fields"],
                    "headers": cfg.ignore["headers"]})
        print(f"diffsvc demo: prod at {prod}, candidate (with a regression) at {candidate}")
        with stack.running(cfg, quiet=True) as (_, cfg):
            print(f"gateway at http://{cfg.listen}; sending traffic for {duration:g} s …")
            sent = asyncio.run(drive(f"http://{cfg.listen}", duration))
            print(f"{sent} requests sent; waiting for the workers to finish comparing …")
            # give the gateway one flush interval, then wait for the workers
            time.sleep(max(0.2, cfg.flush_interval * 2))
            wait_drained(cfg)
            assert cfg.redis_url
            report = data.build(store.connect(cfg.redis_url), Criteria.from_config(cfg))
    print()
    print(formats.as_table(report, 0.0))
    print("Ignored as volatile by the demo's rules: " + ", ".join(DEMO_IGNORE["fields"])
          + " and the Date, Server and X-Request-Id headers.")
    return 0
