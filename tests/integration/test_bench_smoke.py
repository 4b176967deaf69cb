"""The benchmark harness in its tiny mode (1-second runs): it starts everything itself and
prints a table with every row. No figure is checked — speed is measured in bench/, never
asserted in tests — only that every row was measured."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    "direct to upstream", "nginx mirror, fast candidate", "nginx mirror, 50 ms candidate",
    "nginx mirror, dead (refused) candidate", "nginx mirror, hung (never answers) candidate",
    "diffsvc gateway, capture on, fast candidate", "diffsvc gateway, capture on, 50 ms candidate",
    "diffsvc gateway, capture on, dead (refused) candidate",
    "diffsvc gateway, capture on, hung (never answers) candidate",
    "direct at 500 requests/s", "diffsvc at 500 requests/s", "capture → counted lag",
    "gateway RSS (MB), dead (refused)", "gateway RSS (MB), hung (never answers)",
    "parse-only floor", "diffsvc compare()", "diffsvc worker (Redis+RQ)", "naive deepdiff",
]


@pytest.mark.timeout(120)
def test_bench_tiny_mode_prints_every_row() -> None:
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install nginx wrk)")
    done = subprocess.run([sys.executable, "-m", "bench.run", "--seconds", "1", "--pairs", "60"],
                          cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for row in ROWS:
        matching = [line for line in lines if line.startswith(row)]
        assert matching, f"no row {row!r} in:\n{done.stdout}"
        assert any(ch.isdigit() for ch in matching[0][len(row):]), f"row without figures: {matching[0]}"
    assert "load average" in lines[-1]
    assert "[bench" in done.stderr  # progress is printed
