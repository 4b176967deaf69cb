"""Renderings of the report data: JSON for machines, a table for people."""

from __future__ import annotations

from typing import Any

import orjson

FIELDS_SHOWN = 5


def as_json(report: dict[str, Any]) -> str:
    return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()


def as_table(report: dict[str, Any]) -> str:
    entries = report["endpoints"]
    if not entries:
        return "no comparisons yet: send traffic through the gateway and run a worker\n"
    width = max(len("ENDPOINT"), *(len(e["endpoint"]) for e in entries))
    lines = [f"{'ENDPOINT':<{width}}  {'PAIRS':>7}  {'MATCH':>7}  {'MISMATCH':>8}  "
             f"{'ERRORS':>6}  {'RATE':>7}"]
    for e in entries:
        lines.append(f"{e['endpoint']:<{width}}  {e['pairs']:>7}  {e['matches']:>7}  "
                     f"{e['mismatches']:>8}  {e['errors']:>6}  {e['mismatch_rate']:>7.1%}")
        for f in e["fields"][:FIELDS_SHOWN]:
            lines.append(f"    {f['path']}  {f['mismatches']} ({f['rate']:.1%})")
        if len(e["fields"]) > FIELDS_SHOWN:
            lines.append(f"    … {len(e['fields']) - FIELDS_SHOWN} more fields "
                         f"(--endpoint '{e['endpoint']}' --format json)")
    t = report["totals"]
    lines.append(f"\n{len(entries)} endpoints, {t['pairs']} pairs: {t['matches']} match, "
                 f"{t['mismatches']} mismatch, {t['errors']} error")
    return "\n".join(lines) + "\n"


FORMATS = {"json": as_json, "table": as_table}
