"""Diff-quality figures added to each report entry: raw, noise and effective counts (noise
measured with a secondary), per-field noise rates, mismatch groups by signature, and
suspected noise (volatile-looking values) with ready-to-paste rules.

The spine's keys keep their meaning for the reader: `mismatches` and `mismatch_rate` are
the effective figures (equal to the raw ones when no secondary is configured); `raw` and
`noise` hold the rest, so nothing is hidden."""

from __future__ import annotations

from typing import Any

from redis import Redis

from diffsvc.core import signatures as groups_mod
from diffsvc.report import suggest
from diffsvc.report.noise import Margins, effective_mismatches, field_table
from diffsvc.storage import store

GROUPS_SHOWN = 10
SUSPECT_SAMPLES = 20


def rate(n: int, of: int) -> float:
    """n / of as the report shows rates (6 decimals; 0.0 when there is nothing to divide)."""
    return round(n / of, 6) if of else 0.0


def annotate(r: Redis, entries: list[dict[str, Any]], stats: dict[str, dict[str, Any]],
             margins: Margins | None = None, *, suspects: bool = True) -> None:
    """Add quality keys to report entries in place (and make mismatches effective)."""
    margins = margins or Margins()
    quality = store.quality_stats(r, [e["endpoint"] for e in entries])
    for entry in entries:
        name = entry["endpoint"]
        q, s = quality[name], stats[name]
        raw = s["mismatches"]
        compared = s["matches"] + raw
        table = field_table(s["fields"], compared, q["noise_fields"], q["noise_pairs"], margins)
        regressions = {path for path, row in table.items() if row["regression"]}
        sigs = {sig: ([d["path"] for d in groups_mod.from_json(text)], n)
                for sig, (text, n) in q["groups"].items()}
        effective = raw
        if q["noise_pairs"]:
            effective = min(raw, effective_mismatches(sigs, regressions))
            for f in entry["fields"]:
                row = table.get(f["path"], {})
                f.update(noise=row.get("noise", 0), noise_rate=row.get("noise_rate", 0.0),
                         regression=row.get("regression", True))
            entry["fields"].sort(key=lambda f: (not f["regression"], -f["mismatches"], f["path"]))
        entry["raw"] = {"matches": s["matches"], "mismatches": raw,
                        "mismatch_rate": rate(raw, compared)}
        entry["noise"] = {"pairs": q["noise_pairs"], "mismatches": q["noise_mismatches"],
                          "mismatch_rate": rate(q["noise_mismatches"], q["noise_pairs"]),
                          "margins": {"min_relative": margins.min_relative,
                                      "min_absolute": margins.min_absolute}}
        entry["matches"] = s["matches"] + raw - effective
        entry["mismatches"] = effective
        entry["mismatch_rate"] = rate(effective, compared)
        entry["suppressed_as_noise"] = raw - effective
        entry["groups"] = _groups(r, name, sigs, q["groups"], regressions, bool(q["noise_pairs"]))
        if suspects:
            ids = store.samples(r, name, SUSPECT_SAMPLES)
            found = suggest.suspects(c for c in store.load_comparisons(r, ids) if c)
            entry["suspected_noise"] = [x.to_dict() for x in found]


def _groups(r: Redis, endpoint: str, sigs: dict[str, tuple[list[str], int]],
            raw: dict[str, tuple[bytes, int]], regressions: set[str],
            measured: bool) -> list[dict[str, Any]]:
    top = sorted(sigs.items(), key=lambda kv: (-kv[1][1], kv[0]))[:GROUPS_SHOWN]
    return [{"signature": groups_mod.from_json(raw[sig][0]), "count": n,
             "samples": store.group_samples(r, endpoint, sig),
             "noise": measured and not regressions.intersection(paths)}
            for sig, (paths, n) in top]
