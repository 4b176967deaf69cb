"""The `diffsvc` command. Settings flags are generated from `config.Config`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import config
from .errors import DiffsvcError

Handler = Callable[[argparse.Namespace], int]


def _gateway(args: argparse.Namespace) -> int:
    from . import gateway

    gateway.run(config.from_args(args))
    return 0


def _worker(args: argparse.Namespace) -> int:
    from workers import main as worker_main

    cfg = config.from_args(args)
    return worker_main.run(cfg, burst=args.burst, processes=cfg.workers)


def _report(args: argparse.Namespace) -> int:
    from . import store
    from .report import data, render

    cfg = config.from_args(args)
    cfg.require("redis_url")
    assert cfg.redis_url
    report = data.build(store.connect(cfg.redis_url), args.endpoint)
    if args.endpoint and not report["endpoints"]:
        print(f"no comparisons for endpoint {args.endpoint!r}", file=sys.stderr)
    sys.stdout.write(render.FORMATS[args.format](report))
    if args.format == "json":
        sys.stdout.write("\n")
    return 0


def _up(args: argparse.Namespace) -> int:
    from . import stack

    return stack.up(config.from_args(args))


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run.run(config.from_args(args), args.duration)


GATEWAY_KEYS = ("listen", "primary", "candidate", "secondary", "redis_url", "sample_rate",
                "allow_side_effects", "max_inflight", "shadow_timeout", "primary_timeout",
                "retention", "max_body", "batch_size", "flush_interval", "ignore")
WORKER_KEYS = ("redis_url", "retention", "max_body", "workers", "ignore")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffsvc",
        description="Shadow-diff comparison: mirror production traffic to a candidate build "
                    "and report where its answers differ.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help: str,
                keys: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        config.add_flags(p, keys)
        p.set_defaults(handler=handler)
        return p

    command("gateway", _gateway, "run the mirroring gateway in front of primary", GATEWAY_KEYS)
    p = command("worker", _worker, "run RQ workers that compare captured exchanges", WORKER_KEYS)
    p.add_argument("--burst", action="store_true", help="drain the queue, then exit")
    p = command("report", _report, "print the diff report", ("redis_url",))
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--endpoint", metavar="NAME", help="only this endpoint, e.g. 'GET /api/users/{id}'")
    command("up", _up, "run gateway and workers (and an embedded Redis if none is set)")
    p = command("demo", _demo, "run sample upstreams, the whole stack and traffic; print the report")
    p.add_argument("--duration", type=float, default=30.0, metavar="SECONDS",
                   help="how long to send traffic (default: 30)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except DiffsvcError as exc:
        print(f"diffsvc: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
