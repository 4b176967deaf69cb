"""The JSON API of the report server, under /api/v1/ (described in `openapi`).

Handlers are thin: they parse the query, run the blocking Redis work in a thread and answer
JSON. A bad parameter gets 400 with the parameter's name; an unknown id or endpoint, 404."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import orjson
from aiohttp import web
from redis import Redis

from diffsvc.config import Config
from diffsvc.config.appkey import CONFIG
from diffsvc.core import bodies as normalize
from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.errors import ConfigError, DecodeError
from diffsvc.report import data, openapi, summary
from diffsvc.report.appkeys import REDIS
from diffsvc.report.model import FieldStats, rate
from diffsvc.report.verdict import Criteria
from diffsvc.storage import builds, rulestore, store

PREFIX = "/api/v1"
SAMPLES = 20
SHOWN_BODY = 256 * 1024  # bytes of a body returned by the exchange route

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload, default=str), status=status,
                        content_type="application/json")


def error(status: int, message: str, key: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if key:
        body["parameter"] = key
    return json_response(body, status)


async def _run(request: web.Request, fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(partial(fn, request.app[REDIS], *args))


def _guarded(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConfigError as exc:  # includes RuleError: names the parameter
            return error(400, str(exc), exc.key)
    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


# ---- summary and endpoints ---------------------------------------------------------------

async def get_summary(request: web.Request) -> web.Response:
    window = summary.parse_window(dict(request.query))
    criteria = Criteria.from_config(request.app[CONFIG])
    return json_response(await _run(request, summary.build, criteria, window,
                                    request.query.get("build")))


def _field(f: FieldStats, measured: bool, ignored: set[str]) -> dict[str, Any]:
    """A report field with raw / noise / effective counts (noise is measured only with a
    secondary), its classification and whether a UI rule ignores it now."""
    return {**f.to_dict(), "raw": f.mismatches,
            "effective": f.mismatches if f.regression or not measured else 0,
            "ignored": f.path in ignored}


def _group(g: dict[str, Any], raw_mismatches: int) -> dict[str, Any]:
    return {**g, "paths": [s["path"] for s in g["signature"]],
            "share": rate(g["count"], raw_mismatches),
            "sample": (g["samples"] or [None])[0]}


def _samples(r: Redis, ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for exchange_id, comparison in zip(ids, store.load_comparisons(r, ids), strict=True):
        if comparison is not None:
            out.append({"id": exchange_id, "verdict": comparison.verdict,
                        "paths": comparison.paths, "error": comparison.error,
                        "compared_at": comparison.compared_at})
    return out


def endpoint_detail(r: Redis, criteria: Criteria, name: str, window: summary.Window,
                    build: str | None = None) -> dict[str, Any] | None:
    """One endpoint of one build (default: the newest): `summary` holds the figures in the
    window, `totals` (and everything else) those since the data was last cleared."""
    report = data.build(r, criteria, name, of_build=build, samples=SAMPLES)
    if not report.endpoints:
        return None
    [e] = report.endpoints
    entry = report.to_dict()["endpoints"][0]
    key = builds.scoped(name, report.build)
    buckets, hists = store.minute_buckets(r, [key], window.minutes)[key]
    rules = [x.to_dict() for x in rulestore.list_rules(r) if x.endpoint in (name, rulestore.ALL)]
    ignored = {x["path"] for x in rules}
    totals = {k: entry[k] for k in (*store.COUNTER_FIELDS, "mismatch_rate",
                                     "suppressed_as_noise")}
    totals["raw_mismatches"] = e.raw_mismatches
    errors = entry["candidate_errors"]
    errors["exchanges"] = _samples(r, list(e.candidate_errors.samples))
    counted = data.counted_signatures(r, criteria, report.build).get(name, ())
    return {"endpoint": name, "window": window.to_dict(), "build": report.build or None,
            "builds": list(report.builds),
            "summary": summary.endpoint_summary(name, buckets, hists, criteria, counted),
            "totals": totals, "noise": entry["noise"], "criteria": report.criteria.to_dict(),
            "classification": e.classification, "judged": entry["judged"],
            "outcome": e.outcome, "score": e.score,
            "failure": e.failure(0.0), "candidate_errors": errors,
            "fields": [_field(f, bool(e.noise_pairs), ignored) for f in e.fields],
            "groups": [_group(g, e.raw_mismatches) for g in entry["groups"]],
            "suspected_noise": entry["suspected_noise"], "systematic": entry["systematic"],
            "samples": _samples(r, list(e.samples)), "rules": rules,
            "examples": entry["examples"]}


async def get_endpoint(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    window = summary.parse_window(dict(request.query))
    criteria = Criteria.from_config(request.app[CONFIG])
    detail = await _run(request, endpoint_detail, criteria, name, window,
                        request.query.get("build"))
    if detail is None:
        return error(404, f"no comparisons for endpoint {name!r}", "name")
    return json_response(detail)


async def delete_endpoint(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    deleted = await _run(request, store.clear, name)
    return json_response({"cleared": name, "keys_deleted": deleted})


async def delete_data(request: web.Request) -> web.Response:
    deleted = await _run(request, store.clear, None)
    return json_response({"cleared": "all", "keys_deleted": deleted})


# ---- one exchange ------------------------------------------------------------------------

def _body(reply: Reply | Request, cap: int) -> dict[str, Any]:
    raw = reply.body
    if isinstance(reply, Reply):
        try:
            raw = normalize.decode(reply, cap)
        except DecodeError as exc:
            return {"encoding": "undecodable", "text": None, "error": str(exc)}
    out: dict[str, Any] = {"size": len(raw), "truncated": len(raw) > SHOWN_BODY}
    shown = raw[:SHOWN_BODY]
    try:
        out.update(encoding="json", json=orjson.loads(shown))
        return out
    except orjson.JSONDecodeError:
        pass
    try:
        out.update(encoding="text", text=shown.decode("utf-8"))
    except UnicodeDecodeError:
        import base64

        out.update(encoding="base64", text=base64.b64encode(shown).decode("ascii"))
    return out


def curl(request: Request, base_url: str | None) -> str:
    """The request as a curl command line (against primary when its URL is configured)."""
    url = (base_url or "http://PRIMARY") + request.target
    parts = ["curl", "-sS"]
    if request.method != "GET":
        parts += ["-X", request.method]
    skip = {"host", "content-length", "connection", "accept-encoding"}
    for name, value in request.headers:
        if name.lower() not in skip and not name.lower().startswith("x-diffsvc"):
            parts += ["-H", f"{name}: {value}"]
    if request.body:
        parts += ["--data-binary", request.body.decode("utf-8", "replace")]
    parts.append(url)
    return " ".join(shlex.quote(p) for p in parts)


def _reply(reply: Reply, cap: int) -> dict[str, Any]:
    return {"status": reply.status, "headers": reply.headers, "elapsed_ms": reply.elapsed_ms,
            "error": reply.error, "body": _body(reply, cap)}


def exchange_detail(ex: Exchange, comparison: Any, cfg: Config) -> dict[str, Any]:
    req = ex.request
    responses = {"primary": _reply(ex.primary, cfg.max_body),
                 "candidate": _reply(ex.candidate, cfg.max_body)}
    if ex.secondary is not None:
        responses["secondary"] = _reply(ex.secondary, cfg.max_body)
    return {
        "id": ex.id, "captured_at": ex.captured_at,
        "endpoint": comparison.endpoint if comparison else None,
        "request": {"method": req.method, "path": req.path, "query": req.query,
                    "target": req.target, "headers": req.headers,
                    "body": _body(req, cfg.max_body), "curl": curl(req, cfg.primary)},
        "responses": responses,
        "comparison": None if comparison is None else {
            "verdict": comparison.verdict, "diffs": [d.to_dict() for d in comparison.diffs],
            "paths": comparison.paths, "body_kind": comparison.body_kind,
            "error": comparison.error, "rules_digest": comparison.rules_digest,
            "compared_at": comparison.compared_at},
    }


async def get_exchange(request: web.Request) -> web.Response:
    exchange_id = request.match_info["id"]
    ex, comparison = await _run(request, store.load_exchange, exchange_id)
    if ex is None:
        return error(404, f"no exchange {exchange_id!r} (never stored, or expired)", "id")
    return json_response(exchange_detail(ex, comparison, request.app[CONFIG]))


# ---- ignore rules ------------------------------------------------------------------------

async def get_rules(request: web.Request) -> web.StreamResponse:
    rules = await _run(request, rulestore.list_rules)
    if request.query.get("format") == "yaml":
        return web.Response(text=rulestore.to_yaml(rules), content_type="application/yaml")
    return json_response({"rules": [x.to_dict() for x in rules],
                          "version": await _run(request, rulestore.version)})


async def post_rule(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return error(400, "request body must be JSON: {\"path\": \"$.field\", \"endpoint\": ...}")
    if not isinstance(body, dict):
        return error(400, "request body must be a JSON object")
    rule = await _run(request, rulestore.add, body.get("path"), body.get("endpoint"),
                      body.get("note", ""))
    return json_response(rule.to_dict(), status=201)


async def delete_rule(request: web.Request) -> web.Response:
    rule_id = request.match_info["id"]
    if not await _run(request, rulestore.delete, rule_id):
        return error(404, f"no rule {rule_id!r}", "id")
    return json_response({"deleted": rule_id})


async def get_openapi(_request: web.Request) -> web.Response:
    return json_response(openapi.document())


def add_routes(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", f"{PREFIX}/openapi.json", _guarded(get_openapi))
    add("GET", f"{PREFIX}/summary", _guarded(get_summary))
    add("GET", f"{PREFIX}/endpoints/{{name:.+}}", _guarded(get_endpoint))
    add("DELETE", f"{PREFIX}/endpoints/{{name:.+}}", _guarded(delete_endpoint))
    add("DELETE", f"{PREFIX}/data", _guarded(delete_data))
    add("GET", f"{PREFIX}/exchanges/{{id}}", _guarded(get_exchange))
    add("GET", f"{PREFIX}/rules", _guarded(get_rules))
    add("POST", f"{PREFIX}/rules", _guarded(post_rule))
    add("DELETE", f"{PREFIX}/rules/{{id}}", _guarded(delete_rule))
