#!/usr/bin/env python3
"""Regenerate the committed provisioning tree in this directory from diffsvc.dashgen:

    python dashboards/generate.py

(the same files `diffsvc dashboards export DIR` writes; tests/unit/test_dashboards.py fails
when the committed files and the code disagree)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from diffsvc.ops import grafana  # noqa: E402

if __name__ == "__main__":
    for path in grafana.export(HERE):
        print(path.relative_to(HERE.parent))
