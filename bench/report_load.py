"""How long the report overview takes to load with N stored exchanges (default 100,000).

    python bench/report_load.py [--exchanges 100000] [--endpoints 13] [--no-browser]

Exchanges are made the way production makes them: Exchange records (request + a reply from
primary and from candidate, JSON bodies, ~4 % of candidate answers with a changed price)
written with `store.write_exchanges`, then compared and counted by the workers' own
`workers.jobs.compare_exchanges` (normalise, rules, compare, record: counters, per-minute
buckets, latency histograms, groups). Then the report server is started in-process and the
overview is timed: the JSON API (`/api/v1/summary`, 1 h and 24 h windows) over HTTP, and the
whole page in headless chromium (navigation until the endpoints table is rendered)."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402

from diffsvc.config import Config  # noqa: E402
from diffsvc.core.models import Exchange, Reply, Request  # noqa: E402
from diffsvc.ops.embedded import EmbeddedRedis  # noqa: E402
from diffsvc.report import server  # noqa: E402
from diffsvc.storage import jobqueue, store  # noqa: E402
from workers import jobs  # noqa: E402

BATCH = 500


def make_exchange(rnd: random.Random, endpoints: list[str]) -> Exchange:
    base = rnd.choice(endpoints)
    item = rnd.randint(1, 5000)
    price = round(rnd.uniform(5, 500), 2)
    body = {"id": item, "name": f"Item {item}", "price": price, "currency": "EUR",
            "tags": [f"t{rnd.randint(1, 9)}" for _ in range(3)],
            "stock": {"warehouse": "north", "count": rnd.randint(0, 90)}}
    cand = dict(body)
    if rnd.random() < 0.04:
        cand["price"] = round(price * 0.9, 2)
    headers = [("Content-Type", "application/json")]
    return Exchange(
        request=Request("GET", f"{base}/{item}", "", [("Host", "shop"), ("Accept", "*/*")]),
        primary=Reply(200, headers, orjson.dumps(body), rnd.lognormvariate(2.5, 0.5)),
        candidate=Reply(200, headers, orjson.dumps(cand), rnd.lognormvariate(2.7, 0.5)))


def populate(cfg: Config, n: int, n_endpoints: int) -> float:
    assert cfg.redis_url
    r = store.connect(cfg.redis_url, timeout=60)
    q = jobqueue.queue(r)
    ctx = jobs.configure(cfg)
    rnd = random.Random(1)
    endpoints = [f"/api/svc{i}/items" for i in range(n_endpoints)]
    started = time.perf_counter()
    for done in range(0, n, BATCH):
        batch = [make_exchange(rnd, endpoints) for _ in range(min(BATCH, n - done))]
        store.write_exchanges(r, q, batch, cfg.retention)
        jobs.compare_exchanges(r, [x.id for x in batch], ctx)
    q.empty()  # the jobs were run inline above
    return time.perf_counter() - started


class Served:
    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, access_log=None)
        self.url = ""
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self._start())
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


def time_get(url: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as resp:
            resp.read()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def time_browser(url: str, runs: int) -> list[float] | None:
    if not Path("/usr/bin/chromium").exists():
        return None
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        for _ in range(runs):
            page = browser.new_page()
            t0 = time.perf_counter()
            page.goto(url + "/")
            page.wait_for_selector("#endpoints tbody tr")
            out.append((time.perf_counter() - t0) * 1000)
            page.close()
        browser.close()
    return out


def fmt(samples: list[float]) -> str:
    return (f"median {statistics.median(samples):7.1f} ms  min {min(samples):7.1f}  "
            f"max {max(samples):7.1f}  (n={len(samples)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=100_000)
    parser.add_argument("--endpoints", type=int, default=13)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with EmbeddedRedis() as url:
        cfg = Config(redis_url=url)
        seconds = populate(cfg, args.exchanges, args.endpoints)
        r = store.connect(url)
        info = r.info("memory")
        print(f"{args.exchanges} exchanges over {args.endpoints} endpoints stored and compared "
              f"in {seconds:.1f} s ({args.exchanges / seconds:.0f}/s); Redis "
              f"{info['used_memory_human']}, {r.dbsize()} keys")
        srv = Served(server.build_app(cfg))
        for label, path in (("summary 1h ", "/api/v1/summary?window=1h"),
                            ("summary 24h", "/api/v1/summary?window=24h"),
                            ("endpoint   ", "/api/v1/endpoints/GET%20%2Fapi%2Fsvc0%2Fitems%2F%7Bid%7D"),
                            ("index.html ", "/")):
            print(f"API {label} {fmt(time_get(srv.url + path, args.runs))}")
        if not args.no_browser:
            samples = time_browser(srv.url, max(3, args.runs // 4))
            if samples:
                print(f"page overview (chromium, to table rendered) {fmt(samples)}")


if __name__ == "__main__":
    main()
