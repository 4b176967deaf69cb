"""Every rendering of the report, in one registry with one signature: `FORMATS[name](report,
max_rate)`. JSON for machines, a table for people, Markdown for pull-request comments, JUnit
XML for CI (one test case per endpoint). The CLI's `--format` choices are this registry's
keys. Whether an endpoint fails is `EndpointReport.failure` (verdict.failure) everywhere."""

from __future__ import annotations

from collections.abc import Callable
from xml.etree import ElementTree as ET

import orjson

from diffsvc.core.jsonpath import ignore_section
from diffsvc.report.model import EndpointReport, FieldStats, Report

FIELDS_SHOWN = 5
GROUPS_SHOWN = 3
DEFAULT_MAX_RATE = 0.0


def as_json(report: Report, max_rate: float = DEFAULT_MAX_RATE) -> str:
    return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"


def _errors_lines(e: EndpointReport) -> list[str]:
    errs = e.candidate_errors
    if not errs.candidate:
        return []
    text = errs.to_dict()["text"]
    out = [f"    candidate errors {errs.candidate}/{errs.attempts} ({errs.rate:.1%}): {text}"
           + ("  = FAIL" if errs.failing else "")]
    out += [f"      {reason}" for reason in errs.reasons[:3]]
    return out


LABELS = {"regression": "= regression", "not_significant": "= not significant",
          "noise": "= noise, not counted"}


def _field_line(f: FieldStats, noise: str) -> str:
    effect = f.judged
    return (f"    {f.path} {f.kind}  {f.mismatches} ({f.rate:.1%}){noise}  {LABELS[effect.label]}"
            f" (+{effect.effect:.1%} [{effect.effect_low:.1%}, {effect.effect_high:.1%}], "
            f"p={effect.p_value:.2g})")


def table_header(width: int) -> str:
    """The table's first line, its endpoint column `width` wide."""
    return (f"{'ENDPOINT':<{width}}  {'PAIRS':>7}  {'MATCH':>7}  {'MISMATCH':>8}  "
            f"{'ERRORS':>6}  {'RATE':>7}  {'RAW':>7}  {'NOISE':>7}  VERDICT")


def as_table(report: Report, max_rate: float = DEFAULT_MAX_RATE) -> str:
    entries = report.endpoints
    if not entries:
        return "no comparisons yet: send traffic through the gateway and run a worker\n"
    width = max(len("ENDPOINT"), *(len(e.endpoint) for e in entries))
    lines = [table_header(width)]
    for e in entries:
        d = e.to_dict(report.top_fields)
        noise_rate = f"{d['noise']['mismatch_rate']:>7.1%}" if e.noise_pairs else f"{'-':>7}"
        verdict = "FAIL" if e.failure(max_rate) else e.classification.replace("_", " ")
        lines.append(f"{e.endpoint:<{width}}  {e.pairs:>7}  {e.matches:>7}  "
                     f"{e.mismatches:>8}  {e.errors:>6}  {e.mismatch_rate:>7.1%}  "
                     f"{d['raw']['mismatch_rate']:>7.1%}  {noise_rate}  {verdict}")
        lines.extend(_errors_lines(e))
        for f in e.fields[:FIELDS_SHOWN]:
            noise = f"  noise {f.noise} ({f.noise_rate:.1%})" if e.noise_pairs else ""
            lines.append(_field_line(f, noise))
        if e.examples:  # what the template stands for
            lines.append(f"    e.g. {', '.join(e.examples)}")
        lines.extend(_quality_lines(e))
        if len(e.fields) > FIELDS_SHOWN:
            lines.append(f"    … {len(e.fields) - FIELDS_SHOWN} more fields "
                         f"(--endpoint '{e.endpoint}' --format json)")
    t = report.totals()
    lines.append(f"\n{len(entries)} endpoints, {t['pairs']} pairs: {t['matches']} match, "
                 f"{t['mismatches']} mismatch, {t['errors']} error")
    return "\n".join(lines) + "\n"


def _quality_lines(e: EndpointReport) -> list[str]:
    """Mismatch groups (signature, count, samples) and suspected noise with its rule."""
    out = []
    for g in e.groups[:GROUPS_SHOWN]:
        sig = ", ".join(f"{path} {kind}" for path, kind in g.signature[:4])
        more = f" +{len(g.signature) - 4}" if len(g.signature) > 4 else ""
        tag = " (noise)" if g.noise else ""
        out.append(f"    group x{g.count}{tag}: {sig}{more}  e.g. {', '.join(g.samples[:2])}")
    for s in e.suspected_noise:
        [(kind, [value])] = ignore_section([s.path]).items()
        out.append(f"    suspected noise: {s.path}: {s.evidence}; looks like a {s.reason} "
                   f"({s.seen}/{s.of}); rule: routes: [{{match: '{s.endpoint}', "
                   f"ignore: {{{kind}: ['{value}']}}}}]")
    for x in e.systematic:
        out.append(f"    systematic: {x['path']}: {x['relation']} in {x['seen']} samples "
                   "(a regression with a cause, not noise)")
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def as_markdown(report: Report, max_rate: float = DEFAULT_MAX_RATE) -> str:
    entries = report.endpoints
    t = report.totals()
    bad = [e for e in entries if e.failure(max_rate)]
    icon = "❌" if bad else "✅"
    lines = [f"### {icon} diffsvc: {len(bad)} of {len(entries)} endpoints above "
             f"{max_rate:.1%} mismatches or failing on errors", ""]
    if not entries:
        return "\n".join(lines + ["No comparisons yet.", ""])
    lines += ["| Endpoint | Pairs | Mismatches | Errors | Rate | Top differing fields |",
              "|---|---:|---:|---:|---:|---|"]
    for e in entries:
        mark = "❌ " if e.failure(max_rate) else ""
        fields = ", ".join(f"`{_md_cell(f.path)}` ({f.mismatches}"
                           f"{', noise' if f.judged.label == 'noise' else ''})"
                           for f in e.fields[:FIELDS_SHOWN])
        if len(e.fields) > FIELDS_SHOWN:
            fields += f", +{len(e.fields) - FIELDS_SHOWN} more"
        lines.append(f"| {mark}`{_md_cell(e.endpoint)}` | {e.pairs} | {e.mismatches} "
                     f"| {e.errors} | {e.mismatch_rate:.2%} | {fields or '–'} |")
    lines += ["", f"{t['pairs']} pairs: {t['matches']} match, {t['mismatches']} mismatch, "
                  f"{t['errors']} error.", ""]
    lines += [f"- ❌ {_md_cell(reason)}" for e in bad if (reason := e.failure(max_rate))]
    if bad:
        lines.append("")
    return "\n".join(lines)


def as_junit(report: Report, max_rate: float = DEFAULT_MAX_RATE) -> str:
    entries = report.endpoints
    failures = sum(1 for e in entries if e.failure(max_rate))
    suites = ET.Element("testsuites", name="diffsvc", tests=str(len(entries)),
                        failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name="diffsvc.shadow-diff", tests=str(len(entries)),
                          failures=str(failures), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="max_mismatch_rate", value=f"{max_rate:g}")
    ET.SubElement(props, "property", name="max_error_rate",
                  value=f"{report.criteria.max_error_rate:g}")
    for e in entries:
        case = ET.SubElement(suite, "testcase", classname="diffsvc.endpoint", name=e.endpoint)
        errs = e.candidate_errors
        detail = (f"{e.mismatches} of {e.pairs} pairs mismatch ({e.mismatch_rate:.2%}), "
                  f"{e.errors} errors ({errs.candidate} against the candidate)")
        reason = e.failure(max_rate)
        if reason:
            fail = ET.SubElement(case, "failure", type="CandidateErrors" if errs.failing
                                 else "MismatchRateAbove", message=reason)
            fail.text = detail + "\n" + "\n".join(
                [*errs.reasons, *(f"{f.path}: {f.mismatches}" for f in e.fields)])
        else:
            ET.SubElement(case, "system-out").text = detail
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


Format = Callable[[Report, float], str]
FORMATS: dict[str, Format] = {"table": as_table, "json": as_json, "markdown": as_markdown,
                              "junit": as_junit}
