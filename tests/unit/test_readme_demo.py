"""The README's demo sample shows the table `diffsvc report` prints today (its columns)."""

from __future__ import annotations

import re
from pathlib import Path

from diffsvc.report.formats import table_header

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_demo_sample_has_the_tables_columns() -> None:
    text = README.read_text(encoding="utf-8")
    sample = text[text.index("diffsvc demo: prod at"):]
    sample = sample[:sample.index("```")]
    header = next(ln for ln in sample.splitlines() if ln.startswith("ENDPOINT"))
    widest = max(re.findall(r"^(GET \S+)", sample, re.M), key=len)
    assert header == table_header(len(widest))
