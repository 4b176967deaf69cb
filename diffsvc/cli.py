"""The `diffsvc` command. Each command gets a flag for every setting tagged with it
(`setting(commands=...)` in diffsvc/config/settings.py); failures exit with diffsvc.errors.EXIT_*."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from redis import Redis

from diffsvc import config
from diffsvc.config import logs
from diffsvc.errors import EXIT_INTERRUPTED, EXIT_SOFTWARE, UsageError
from diffsvc.ops import arguments
from diffsvc.ops.explain import explain
from diffsvc.report.formats import FORMATS
from diffsvc.report.verdict import Criteria
from diffsvc.storage import store

Handler = Callable[[argparse.Namespace], int]
BUILD_HELP = "the candidate build to judge (default: the newest one compared)"
STACK = (config.GATEWAY, config.WORKER, config.SERVE)  # what `up` and `demo` run


def _logged(args: argparse.Namespace) -> config.Config:
    """The config of a long-running command, its logging set up from it."""
    cfg = config.from_args(args)
    logs.setup(cfg)
    return cfg


def _gateway(args: argparse.Namespace) -> int:
    from diffsvc.ops import processes

    return processes.run_gateway(_logged(args))


def _worker(args: argparse.Namespace) -> int:
    from diffsvc.ops import processes

    return processes.run_workers(_logged(args), burst=args.burst)


def _stored(args: argparse.Namespace) -> tuple[config.Config, Redis]:
    """The config and Redis of a command that reads stored data; its --endpoint checked."""
    cfg = config.from_args(args)
    cfg.require("redis_url")
    assert cfg.redis_url
    r = store.connect(cfg.redis_url)
    arguments.check_endpoint(r, getattr(args, "endpoint", None))
    return cfg, r


def _report(args: argparse.Namespace) -> int:
    from diffsvc.report import data

    cfg, r = _stored(args)
    report = data.build(r, Criteria.from_config(cfg), args.endpoint, of_build=args.build)
    sys.stdout.write(FORMATS[args.format](report, args.max_mismatch_rate))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import dataclasses

    from diffsvc.report import server

    cfg = _logged(args)
    if args.listen:
        cfg = dataclasses.replace(cfg, report_listen=config.parse_listen("--listen", args.listen))
    server.run(cfg)
    return 0


def _rules_export(args: argparse.Namespace) -> int:
    from diffsvc.storage import rulestore

    _, r = _stored(args)
    sys.stdout.write(rulestore.to_yaml(rulestore.list_rules(r)))
    return 0


def _rules_suggest(args: argparse.Namespace) -> int:
    from diffsvc.report import data, suggest

    if args.samples < 1:
        raise UsageError(f"--samples: must be at least 1, got {args.samples}")
    cfg, r = _stored(args)
    report = data.build(r, Criteria.from_config(cfg), args.endpoint, suspect_samples=args.samples)
    matches = {route["name"]: route["match"] for route in cfg.routes}
    found = [s for e in report.endpoints for s in e.suspected_noise]
    sys.stdout.write(suggest.suggest_yaml(found, matches))
    return 0


def _data_clear(args: argparse.Namespace) -> int:
    _, r = _stored(args)
    deleted = store.clear(r, args.endpoint)
    what = f"endpoint {args.endpoint!r}" if args.endpoint else "every endpoint (rules kept)"
    print(f"cleared {what}: {deleted} keys deleted")
    return 0


def _up(args: argparse.Namespace) -> int:
    from diffsvc.ops import stack

    return stack.up(config.from_args(args))


def _demo(args: argparse.Namespace) -> int:
    from diffsvc.demo import run

    return run.run(config.from_args(args), args.duration)


def _gate(args: argparse.Namespace) -> int:
    from diffsvc.report import gate

    params = gate.params_from({"window": args.window, "max_mismatch_rate": args.max_mismatch_rate,
                               "min_pairs": args.min_pairs, "confidence": args.confidence})
    cfg, r = _stored(args)
    return gate.command(r, params, Criteria.from_config(cfg), args.endpoint, args.json,
                        args.build)


def _replay(args: argparse.Namespace) -> int:
    from diffsvc.ops import replay

    return replay.command(config.from_args(args), args.files, rate=args.rate,
                          concurrency=args.concurrency, gate=args.gate,
                          max_mismatch_rate=args.max_mismatch_rate, run=args.run)


def _dashboards(args: argparse.Namespace) -> int:
    from diffsvc.ops import grafana

    if args.dashboards_command == "export":
        for path in grafana.export(args.directory):
            print(path)
        return 0
    result = grafana.push(args.grafana_url, args.token, folder_uid=args.folder_uid,
                          datasource_uid=args.datasource_uid)
    print(f"folder {result.folder}; dashboards {', '.join(result.dashboards)}; alert rules "
          f"created {len(result.rules_created)}, updated {len(result.rules_updated)}")
    return 0


def _proxy_config(args: argparse.Namespace) -> int:
    from diffsvc.ops import proxyconfig

    opts = proxyconfig.Options(args.proxy, args.collector, args.listen, args.primary,
                               args.sample_rate, args.token or "", args.max_request_body,
                               args.max_response_body, args.selector, args.resolver)
    sys.stdout.write(proxyconfig.render(opts))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.Parser(
        prog="diffsvc", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=arguments.exit_codes(), description="Shadow-diff comparison: mirror production traffic to a candidate build "
                    "and report where its answers differ.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help: str,
                reads: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
        """A subcommand with the flags of the settings it reads (those tagged with its name,
        or with each of `reads`)."""
        p = sub.add_parser(name, help=help, description=help)
        config.add_flags(p, reads or (name,))
        p.set_defaults(handler=handler)
        return p

    command("gateway", _gateway, "run the mirroring gateway in front of primary")
    p = command("worker", _worker, "run RQ workers that compare captured exchanges")
    p.add_argument("--burst", action="store_true", help="drain the queue, then exit")
    p = command("report", _report, "print the diff report")
    p.add_argument("--format", choices=tuple(FORMATS), default="table",
                   help="table (default), json, markdown (pull-request comments) or junit "
                        "(XML, one test case per endpoint)")
    p.add_argument("--endpoint", metavar="NAME", help="only this endpoint, e.g. 'GET /api/users/{id}'")
    p.add_argument("--max-mismatch-rate", type=arguments.rate, default=0.0, metavar="RATE",
                   help="markdown/junit: an endpoint above this rate fails (0.01 or 1%%; default 0)")
    p.add_argument("--build", metavar="BUILD", help=BUILD_HELP)
    p = command("serve", _serve, "run the report server: web UI and JSON API (/api/v1/)")
    p.add_argument("--listen", metavar="HOST:PORT", help="overrides report.listen")
    rules = sub.add_parser("rules", help="ignore rules added from the report UI",
                           description="ignore rules added from the report UI")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    p = rules_sub.add_parser("export", help="print the UI-added rules as config YAML",
                             description="print the ignore rules added from the report UI as "
                                         "the YAML a config file takes (ignore: and routes:)")
    config.add_flags(p, (config.RULES,))
    p.set_defaults(handler=_rules_export)
    p = rules_sub.add_parser("suggest", help="print suggested ignore rules for suspected noise",
                             description="print ignore rules, as config YAML, for fields "
                                         "production changes by itself (the same request "
                                         "answered differently, or primary and secondary "
                                         "differing); value shapes only rank them")
    config.add_flags(p, (config.RULES,))
    p.add_argument("--endpoint", metavar="NAME", help="only this endpoint, e.g. 'GET /api/users/{id}'")
    p.add_argument("--samples", type=int, default=50, metavar="N",
                   help="recent mismatches looked at per endpoint (default: 50)")
    p.set_defaults(handler=_rules_suggest)
    p = command("gate", _gate, "canary gate: is the mismatch rate over the window low enough? "
                "Exit status 0 pass, 1 fail, 2 inconclusive (not enough evidence yet)")
    p.add_argument("--endpoint", metavar="NAME", help="one endpoint (default: every endpoint "
                   "with pairs in the window; the worst verdict counts)")
    p.add_argument("--window", default="5m", metavar="DURATION", help="default: 5m (whole minutes)")
    p.add_argument("--max-mismatch-rate", default="0.01", metavar="RATE", help="default: 0.01")
    p.add_argument("--min-pairs", default="100", metavar="N", help="fewer pairs: inconclusive "
                   "(default: 100)")
    p.add_argument("--confidence", default="0.95", metavar="P", help="of the Wilson upper bound "
                   "a pass needs within the rate (default: 0.95)")
    p.add_argument("--json", action="store_true", help="print the JSON the HTTP gate answers")
    p.add_argument("--build", metavar="BUILD", help=BUILD_HELP)
    data = sub.add_parser("data", help="the stored exchanges, comparisons and counters",
                          description="the stored exchanges, comparisons and counters")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = data_sub.add_parser("clear", help="delete the stored data (between rule iterations)",
                            description="delete the stored exchanges, comparisons and counters "
                                        "of every endpoint, or of one; ignore rules added from "
                                        "the UI are kept (the UI's Clear buttons do the same)")
    config.add_flags(p, (config.DATA,))
    p.add_argument("--endpoint", metavar="NAME", help="only this endpoint, e.g. 'GET /api/users/{id}'")
    p.set_defaults(handler=_data_clear)
    dash = sub.add_parser("dashboards", help="Grafana dashboards and alert rules",
                          description="Grafana dashboards, alert rules and Prometheus rules")
    dash_sub = dash.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    p = dash_sub.add_parser("push", help="create or update folder, dashboards and alert rules in "
                            "a running Grafana", description="create or update the folder, "
                            "dashboards and alert rules in a running Grafana (idempotent)")
    p.add_argument("--grafana-url", required=True, metavar="URL", help="e.g. http://grafana:3000")
    p.add_argument("--token", metavar="TOKEN", help="service account token (or user:pass in URL)")
    p.add_argument("--folder-uid", default="diffsvc", metavar="UID", help="default: diffsvc")
    p.add_argument("--datasource-uid", default="diffsvc-prometheus", metavar="UID",
                   help="the Prometheus datasource the alert rules query")
    p.set_defaults(handler=_dashboards)
    p = dash_sub.add_parser("export", help="write the provisioning tree to DIR",
                            description="write Grafana provisioning (datasource, dashboards, "
                            "alert rules) and Prometheus config and rules under DIR")
    p.add_argument("directory", metavar="DIR")
    p.set_defaults(handler=_dashboards)
    p = command("replay", _replay, "send recorded requests (HAR, JSON lines, GoReplay .gor) to "
                "primary and candidate, compare them and print the report")
    p.add_argument("files", nargs="+", metavar="FILE", help=".har, .gor, or JSON lines (one "
                   "{method, url|path, headers, body} a line)")
    p.add_argument("--rate", type=float, default=0.0, metavar="RPS",
                   help="requests per second (default: 0, as fast as --concurrency allows)")
    p.add_argument("--concurrency", type=int, default=8, metavar="N",
                   help="requests in flight at once (default: 8)")
    p.add_argument("--gate", action="store_true", help="exit 1 when an endpoint's mismatch rate "
                   "is above --max-mismatch-rate (for CI pipelines)")
    p.add_argument("--max-mismatch-rate", type=arguments.rate, default=0.0, metavar="RATE",
                   help="with --gate: the highest mismatch rate that passes (default: 0)")
    p.add_argument("--run", metavar="NAME", type=arguments.run_name,
                   help="keep this replay's data apart from other traffic in the same Redis: "
                        "its endpoints are counted as '[NAME] METHOD /path' and only they are "
                        "reported")
    command("up", _up, "run gateway, workers and report server (and an embedded Redis if none "
            "is set)", STACK)
    p = sub.add_parser("proxy-config", help="print an Envoy, nginx or Istio config that ships "
                       "each exchange (primary's actual answer included) to the collector",
                       description="print a complete, runnable proxy config: clients are served "
                       "by primary; each exchange is shipped to `diffsvc gateway --mode collect`."
                       " The part to copy into an existing config is marked `diffsvc BEGIN`.")
    p.add_argument("proxy", choices=("envoy", "nginx", "istio"), help="envoy (envoy -c FILE), nginx "
                   "(nginx -p PREFIX -c FILE -g 'daemon off;') or istio (an EnvoyFilter)")
    p.add_argument("--collector", required=True, metavar="URL",
                   help="the collector, without a path, e.g. http://10.0.0.5:9090")
    p.add_argument("--listen", metavar="HOST:PORT", help="envoy/nginx: where clients connect")
    p.add_argument("--primary", metavar="URL", help="envoy/nginx: production, http://HOST:PORT")
    p.add_argument("--sample-rate", type=float, default=1.0, metavar="R",
                   help="share of exchanges shipped, 0 to 1 (default: 1)")
    p.add_argument("--token", metavar="T", help="the collector's collect.token")
    p.add_argument("--max-request-body", type=int, default=config.Config.mirror_max_body,
                   metavar="BYTES", help="larger request bodies are not shipped (counted)")
    p.add_argument("--max-response-body", type=int, default=config.Config.max_body,
                   metavar="BYTES", help="larger responses are not shipped (counted)")
    p.add_argument("--selector", metavar="LABEL=VALUE", help="istio: the workload's pod label")
    p.add_argument("--resolver", metavar="IP", help="nginx: DNS server, for a collector "
                   "given by name")
    p.set_defaults(handler=_proxy_config)
    p = command("demo", _demo, "run sample upstreams, the whole stack and traffic; print the "
                "report", STACK)
    p.add_argument("--duration", type=float, default=30.0, metavar="SECONDS",
                   help="how long to send traffic (default: 30)")
    arguments.add_common(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; an expected failure is one line on stderr (what failed, where, what to
    do) and its exit status; --debug adds the traceback. Anything else is a bug: traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        known = explain(exc)
        if known is None or args.debug:
            traceback.print_exc()
        if known is None:
            return EXIT_SOFTWARE
        print(f"diffsvc {args.command}: {known[1]}", file=sys.stderr)
        return known[0]
