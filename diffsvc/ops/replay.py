"""`diffsvc replay FILE…`: recorded requests (HAR, JSON lines, GoReplay `.gor`) sent to
primary and candidate (and secondary), captured and compared through the same pipeline.

Requests are paced (`rate`), at most `concurrency` at once, with a progress bar and ETA on
stderr; the allow/deny lists and per-route `shadow_headers` apply. Afterwards the queued
comparisons are run (in burst, here) and the report of the run is printed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from diffsvc.config import Config, tls
from diffsvc.core.models import Exchange, Headers, Reply, Request, stamp
from diffsvc.core.traffic import TrafficControl
from diffsvc.errors import InputError, UnreadableError, UsageError
from diffsvc.gateway import upstream
from diffsvc.gateway.capture import Capture
from diffsvc.ops.embedded import EmbeddedRedis
from diffsvc.report import data, formats
from diffsvc.report.model import Report
from diffsvc.report.verdict import Criteria
from diffsvc.storage import store
from workers import main as worker_main
from workers.jobs import run_endpoint

GOR_SEPARATOR = "\n\U0001f435\U0001f648\U0001f649\n".encode()
_SKIPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


def _headers(where: str, raw: Any) -> Headers:
    if raw is None:
        return []
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        try:
            items = [(h["name"], h["value"]) if isinstance(h, dict) else (h[0], h[1]) for h in raw]
        except (KeyError, IndexError, TypeError):
            raise InputError(where, "headers: expected a mapping, [name, value] pairs or "
                                     "{name, value} objects", raw) from None
    else:
        raise InputError(where, "headers: expected a mapping or a list", raw)
    return [(str(k), str(v)) for k, v in items
            if not str(k).startswith(":") and str(k).lower() not in _SKIPPED_HEADERS]


def _request(where: str, method: Any, url: Any, headers: Headers, body: bytes) -> Request:
    if not isinstance(method, str) or not method.isalpha():
        raise InputError(where, "method: expected an HTTP method such as GET", method)
    if not isinstance(url, str) or not url:
        raise InputError(where, "url/path: expected a URL or a /path", url)
    parts = urlsplit(url)
    if not parts.path.startswith("/") and not (parts.scheme and parts.netloc):
        raise InputError(where, "url/path: expected an absolute URL or a /path", url)
    if parts.netloc and not any(k.lower() == "host" for k, _ in headers):
        headers = [("Host", parts.netloc), *headers]
    return Request(method.upper(), parts.path or "/", parts.query, headers, body)


def read_har(path: Path) -> Iterator[Request]:
    expected = "not a HAR file (expected JSON with a list log.entries)"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(str(path), f"{expected}: {exc}") from None
    log = doc.get("log") if isinstance(doc, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise InputError(str(path), expected)
    for i, entry in enumerate(entries):
        where = f"{path}: log.entries[{i}].request"
        req = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(req, dict):
            raise InputError(where, "missing")
        post = req.get("postData") or {}
        text = post.get("text") or ""
        body = base64.b64decode(text) if post.get("encoding") == "base64" else text.encode()
        yield _request(where, req.get("method"), req.get("url"),
                       _headers(where, req.get("headers")), body)


def read_jsonl(path: Path) -> Iterator[Request]:
    """One JSON object a line: method, url or path, headers, body (or body_base64)."""
    with path.open("rb") as lines:
        for n, raw_line in enumerate(lines, 1):
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{path}:{n}", "not UTF-8 text") from None
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise InputError(where, f"not valid JSON: {exc}") from None
            if not isinstance(item, dict):
                raise InputError(where, "expected a JSON object", item)
            if "body_base64" in item:
                try:
                    body = base64.b64decode(item["body_base64"], validate=True)
                except (ValueError, TypeError):
                    raise InputError(where, "body_base64: not base64") from None
            else:
                raw = item.get("body")
                body = b"" if raw is None else (raw if isinstance(raw, str)
                                                else json.dumps(raw)).encode()
            yield _request(where, item.get("method", "GET"), item.get("url", item.get("path")),
                           _headers(where, item.get("headers")), body)


def read_gor(path: Path) -> Iterator[Request]:
    """GoReplay's file output: payloads separated by a line of monkeys; type 1 = request."""
    data = path.read_bytes()
    for i, payload in enumerate(data.split(GOR_SEPARATOR)):
        if not payload.strip():
            continue
        where = f"{path}: payload {i + 1}"
        meta, _, raw = payload.partition(b"\n")
        if not meta.startswith(b"1 "):
            continue  # 2: original response, 3: replayed response
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise InputError(where, "bad request line", lines[0])
        headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])
                   if k.strip()]
        yield _request(where, parts[0], parts[1], _headers(where, headers), body)


def read(path: Path) -> list[Request]:
    if not path.is_file():
        raise UnreadableError(str(path), "no such file (give a .har, .gor or JSON lines file)")
    suffix = path.suffix.lower()
    if suffix == ".har":
        return list(read_har(path))
    if suffix == ".gor":
        return list(read_gor(path))
    return list(read_jsonl(path))


def read_all(paths: Iterable[str]) -> list[Request]:
    return [req for p in paths for req in read(Path(p))]


class Progress:
    """`[#####-----] 120/500 24% 40.1/s ETA 9s` on a terminal line, redrawn at most 10×/s."""

    def __init__(self, total: int, out: TextIO, width: int = 30) -> None:
        self.total, self.out, self.width = total, out, width
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self._drawn >= 0.1 or self.done == self.total:
            self._drawn = now
            self.draw(now)

    def draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        share = self.done / self.total if self.total else 1.0
        filled = int(share * self.width)
        eta = (self.total - self.done) / rate if rate else 0.0
        self.out.write(f"\r[{'#' * filled}{'-' * (self.width - filled)}] {self.done}/{self.total} "
                       f"{share:4.0%} {rate:.1f}/s ETA {eta:.0f}s ")
        if self.done == self.total:
            self.out.write("\n")
        self.out.flush()


async def _one(cfg: Config, session: Any, req: Request) -> Exchange:
    async def call(base: str) -> Reply:
        headers = upstream.forward_headers(req, None, shadow=base != cfg.primary,
                                           forward_host=cfg.forward_host)
        return await upstream.call(session, base, req, headers, cfg.shadow_timeout, cfg.max_body)

    assert cfg.primary and cfg.candidate
    bases = [cfg.primary, cfg.candidate] + ([cfg.secondary] if cfg.secondary else [])
    replies = await asyncio.gather(*(call(b) for b in bases))
    return Exchange(req, replies[0], replies[1], replies[2] if len(replies) > 2 else None,
                    build=stamp(replies[1], cfg.version_header, cfg.candidate_version))


async def send(cfg: Config, requests: list[Request], *, rate: float = 0.0, concurrency: int = 8,
               progress: TextIO | None = None, run: str | None = None
               ) -> tuple[list[str], Counter[str]]:
    """Send every admitted request; the ids of the captured exchanges and the counters.
    As in the gateway, only GET, HEAD and OPTIONS are sent unless allow_side_effects."""
    assert cfg.redis_url is not None
    redis_url = cfg.redis_url
    counters: Counter[str] = Counter()
    traffic = TrafficControl(replace(cfg, sample_rate=1.0, routes=[
        {**r, "sample_rate": 1.0} for r in cfg.routes], shadow_rate_limit=0.0))
    admitted = []
    for req in requests:
        reason = traffic.admitted(req)
        counters[reason or "replayed"] += 1
        if reason is None:
            admitted.append(traffic.rewrite(req))
    capture = Capture(cfg, lambda: store.connect(redis_url), counters, run=run)
    capture.start()
    session = upstream.new_session(ssl_context=tls.client_context(cfg))
    bar = Progress(len(admitted), progress) if progress is not None else None
    ids: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()

    async def one(i: int, req: Request) -> None:
        if rate > 0:
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        async with gate:
            exchange = await _one(cfg, session, req)
        ids.append(exchange.id)
        capture.add(exchange)
        if bar is not None:
            bar.step()

    try:
        await asyncio.gather(*(one(i, req) for i, req in enumerate(admitted)))
    finally:
        await session.close()
        await capture.close()
    return ids, counters


def wait_compared(cfg: Config, ids: list[str], timeout: float = 60.0,
                  run: str | None = None) -> int:
    """Run the queued comparisons here (burst) and wait until every exchange is compared
    (other workers on the same Redis may hold some); how many are compared."""
    assert cfg.redis_url is not None
    r = store.connect(cfg.redis_url)
    deadline = time.monotonic() + timeout
    while True:
        worker_main.run_one(cfg, burst=True, run=run)
        done = sum(c is not None for c in store.load_comparisons(r, ids))
        if done >= len(ids) or time.monotonic() > deadline:
            return done
        time.sleep(0.2)


def run_report(report: Report, run: str | None) -> Report:
    """The report of one run's endpoints only (all of them without a run)."""
    if run is None:
        return report
    prefix = run_endpoint(run, "")
    return replace(report, endpoints=tuple(e for e in report.endpoints
                                           if e.endpoint.startswith(prefix)))


def command(cfg: Config, files: list[str], *, rate: float, concurrency: int, gate: bool,
            max_mismatch_rate: float, run: str | None = None, out: TextIO | None = None,
            err: TextIO | None = None) -> int:
    """The `diffsvc replay` command: 0, or with `gate` 1 when an endpoint diverges. With
    `run`, its exchanges go to a queue of their own and its endpoints are counted as
    "[run] METHOD /path", apart from other traffic in the same Redis."""
    out, err = out or sys.stdout, err or sys.stderr
    cfg.require("primary", "candidate")
    if rate < 0:
        raise UsageError(f"--rate: must be at least 0 (0: as fast as --concurrency allows), got {rate}")
    if concurrency < 1:
        raise UsageError(f"--concurrency: must be at least 1, got {concurrency}")
    requests = read_all(files)
    if not requests:
        raise InputError(", ".join(files), "no requests in these files")
    with contextlib.ExitStack() as stack:
        if cfg.redis_url is None:  # a fresh embedded Redis: the report is this run's
            cfg = replace(cfg, redis_url=stack.enter_context(EmbeddedRedis()))
        started = time.monotonic()
        ids, counters = asyncio.run(send(cfg, requests, rate=rate, concurrency=concurrency,
                                         progress=err, run=run))
        compared = wait_compared(cfg, ids, run=run)
        assert cfg.redis_url is not None
        report = run_report(data.build(store.connect(cfg.redis_url), Criteria.from_config(cfg)), run)
        out.write(formats.as_table(report, max_mismatch_rate))
        skipped = sum(n for k, n in counters.items() if k.startswith("skipped_"))
        side_effects = counters["skipped_method"]
        err.write(f"replay: {len(requests)} requests read, {counters['replayed']} sent, "
                  f"{skipped} skipped (allow/deny"
                  + (f"; {side_effects} with side effects: --allow-side-effects sends them"
                     if side_effects else "") + f"), {counters['captured']} captured, "
                  f"{compared} compared in {time.monotonic() - started:.1f}s\n")
        if not gate:
            return 0
        failed = [reason for e in report.endpoints if (reason := e.failure(max_mismatch_rate))]
        for reason in failed:
            err.write(f"replay gate: FAIL {reason}\n")
        if compared < len(ids):
            err.write(f"replay gate: FAIL only {compared} of {len(ids)} exchanges compared\n")
            return 1
        if not failed:
            err.write(f"replay gate: pass (every endpoint within {max_mismatch_rate:.2%}, "
                      f"candidate errors within {report.criteria.max_error_rate:.2%})\n")
        return 1 if failed else 0
