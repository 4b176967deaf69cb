"""How a long-running process logs (log.format, log.level, log.interval): text or JSON lines
on stderr, a start line carrying the config's digest, and one progress line per interval
with what happened since the last one."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from diffsvc.config.load import to_mapping
from diffsvc.config.settings import Config

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601), level, logger, message (and exc)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                  + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage()}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def setup(cfg: Config) -> None:
    """The process's logging, from the settings: diffsvc's own loggers at log.level, other
    libraries' at warning, one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if cfg.log_format == "json" else
                         logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("diffsvc").setLevel(cfg.log_level.upper())


def digest(cfg: Config) -> str:
    """12 hex digits identifying the effective settings (equal configs, equal digests)."""
    text = yaml.safe_dump(to_mapping(cfg), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Progress:
    """Logs the change of some counters since the last line, every `interval` seconds:
    `what: 120 requests, 118 mirrored, 0 dropped in the last 60s`."""

    def __init__(self, log: logging.Logger, what: str, read: Callable[[], Mapping[str, int]],
                 shown: Mapping[str, tuple[str, ...]]) -> None:
        self.log = log
        self.what = what
        self.read = read
        self.shown = shown  # label: the counters summed under it
        self.last = dict(read())
        self.since = time.monotonic()

    def line(self) -> str:
        now, elapsed = dict(self.read()), time.monotonic() - self.since
        parts = [f"{sum(now.get(k, 0) - self.last.get(k, 0) for k in keys)} {label}"
                 for label, keys in self.shown.items()]
        self.last, self.since = now, time.monotonic()
        return f"{self.what}: {', '.join(parts)} in the last {elapsed:.0f}s"

    def log_line(self) -> None:
        self.log.info("%s", self.line())


class Ticker:
    """Logs `progress` every `interval` seconds from a task of the running loop; `start` and
    `stop` fit aiohttp's on_startup and on_cleanup (a task, not an async generator, so a
    loop torn down mid-start has nothing to finalize)."""

    def __init__(self, progress: Progress, interval: float) -> None:
        self.progress = progress
        self.interval = interval
        self.task: asyncio.Task[None] | None = None

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.progress.log_line()

    async def start(self, _app: object = None) -> None:
        self.task = asyncio.create_task(self._every(), name=f"diffsvc-progress-{self.progress.what}")

    async def stop(self, _app: object = None) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
