"""Renderings of the report data: JSON for machines, a table for people."""

from __future__ import annotations

from typing import Any

import orjson

from diffsvc.core.jsonpath import ignore_section

FIELDS_SHOWN = 5


def as_json(report: dict[str, Any]) -> str:
    return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()


def as_table(report: dict[str, Any]) -> str:
    entries = report["endpoints"]
    if not entries:
        return "no comparisons yet: send traffic through the gateway and run a worker\n"
    width = max(len("ENDPOINT"), *(len(e["endpoint"]) for e in entries))
    lines = [f"{'ENDPOINT':<{width}}  {'PAIRS':>7}  {'MATCH':>7}  {'MISMATCH':>8}  "
             f"{'ERRORS':>6}  {'RATE':>7}  {'RAW':>7}  {'NOISE':>7}"]
    for e in entries:
        raw = e.get("raw", {}).get("mismatch_rate", e["mismatch_rate"])
        noise = e.get("noise", {})
        noise_rate = f"{noise['mismatch_rate']:>7.1%}" if noise.get("pairs") else f"{'-':>7}"
        lines.append(f"{e['endpoint']:<{width}}  {e['pairs']:>7}  {e['matches']:>7}  "
                     f"{e['mismatches']:>8}  {e['errors']:>6}  {e['mismatch_rate']:>7.1%}  "
                     f"{raw:>7.1%}  {noise_rate}")
        for f in e["fields"][:FIELDS_SHOWN]:
            extra = ""
            if "noise" in f:
                extra = (f"  noise {f['noise']} ({f['noise_rate']:.1%})"
                         f"{'' if f['regression'] else '  = noise, not counted'}")
            lines.append(f"    {f['path']}  {f['mismatches']} ({f['rate']:.1%}){extra}")
        if e.get("examples"):  # what the template stands for
            lines.append(f"    e.g. {', '.join(e['examples'])}")
        lines.extend(_quality_lines(e))
        if len(e["fields"]) > FIELDS_SHOWN:
            lines.append(f"    … {len(e['fields']) - FIELDS_SHOWN} more fields "
                         f"(--endpoint '{e['endpoint']}' --format json)")
    t = report["totals"]
    lines.append(f"\n{len(entries)} endpoints, {t['pairs']} pairs: {t['matches']} match, "
                 f"{t['mismatches']} mismatch, {t['errors']} error")
    return "\n".join(lines) + "\n"


GROUPS_SHOWN = 3


def _quality_lines(e: dict[str, Any]) -> list[str]:
    """Mismatch groups (signature, count, samples) and suspected noise with its rule."""
    out = []
    for g in e.get("groups", [])[:GROUPS_SHOWN]:
        sig = ", ".join(f"{d['path']} {d['kind']}" for d in g["signature"][:4])
        more = f" +{len(g['signature']) - 4}" if len(g["signature"]) > 4 else ""
        tag = " (noise)" if g.get("noise") else ""
        out.append(f"    group x{g['count']}{tag}: {sig}{more}  e.g. {', '.join(g['samples'][:2])}")
    for s in e.get("suspected_noise", []):
        [(kind, [value])] = ignore_section([s["path"]]).items()
        out.append(f"    suspected noise: {s['path']} looks like a {s['reason']} "
                   f"({s['seen']}/{s['of']}); rule: routes: [{{match: '{s['endpoint']}', "
                   f"ignore: {{{kind}: ['{value}']}}}}]")
    return out


FORMATS = {"json": as_json, "table": as_table}
