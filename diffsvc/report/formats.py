"""Renderings of the report for other tools: Markdown (pull-request comments) and JUnit XML
(CI systems: one test case per endpoint, failing above a mismatch-rate threshold)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

FIELDS_SHOWN = 5
DEFAULT_MAX_RATE = 0.0


def failing(entry: dict[str, Any], max_rate: float) -> bool:
    """The threshold applies to `mismatch_rate`, the effective rate (noise removed)."""
    return entry["mismatch_rate"] > max_rate


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def as_markdown(report: dict[str, Any], max_rate: float = DEFAULT_MAX_RATE) -> str:
    entries = report["endpoints"]
    t = report["totals"]
    bad = [e for e in entries if failing(e, max_rate)]
    icon = "❌" if bad else "✅"
    lines = [f"### {icon} diffsvc: {len(bad)} of {len(entries)} endpoints above "
             f"{max_rate:.1%} mismatches", ""]
    if not entries:
        return "\n".join(lines + ["No comparisons yet.", ""])
    lines += ["| Endpoint | Pairs | Mismatches | Errors | Rate | Top differing fields |",
              "|---|---:|---:|---:|---:|---|"]
    for e in entries:
        mark = "❌ " if failing(e, max_rate) else ""
        fields = ", ".join(f"`{_md_cell(f['path'])}` ({f['mismatches']})"
                           for f in e["fields"][:FIELDS_SHOWN])
        if len(e["fields"]) > FIELDS_SHOWN:
            fields += f", +{len(e['fields']) - FIELDS_SHOWN} more"
        lines.append(f"| {mark}`{_md_cell(e['endpoint'])}` | {e['pairs']} | {e['mismatches']} "
                     f"| {e['errors']} | {e['mismatch_rate']:.2%} | {fields or '–'} |")
    lines += ["", f"{t['pairs']} pairs: {t['matches']} match, {t['mismatches']} mismatch, "
                  f"{t['errors']} error.", ""]
    return "\n".join(lines)


def as_junit(report: dict[str, Any], max_rate: float = DEFAULT_MAX_RATE) -> str:
    entries = report["endpoints"]
    failures = sum(1 for e in entries if failing(e, max_rate))
    suites = ET.Element("testsuites", name="diffsvc", tests=str(len(entries)),
                        failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name="diffsvc.shadow-diff", tests=str(len(entries)),
                          failures=str(failures), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="max_mismatch_rate", value=f"{max_rate:g}")
    for e in entries:
        case = ET.SubElement(suite, "testcase", classname="diffsvc.endpoint", name=e["endpoint"])
        detail = (f"{e['mismatches']} of {e['pairs']} pairs mismatch ({e['mismatch_rate']:.2%}), "
                  f"{e['errors']} errors")
        if failing(e, max_rate):
            fail = ET.SubElement(case, "failure", type="MismatchRateAbove",
                                 message=f"mismatch rate {e['mismatch_rate']:.2%} > {max_rate:.2%}")
            fail.text = detail + "\n" + "\n".join(
                f"{f['path']}: {f['mismatches']}" for f in e["fields"])
        else:
            ET.SubElement(case, "system-out").text = detail
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


FORMATS = {"markdown": as_markdown, "junit": as_junit}
