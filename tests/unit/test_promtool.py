"""The shipped Prometheus rules pass `promtool check rules` and their unit tests
(`promtool test rules`). Skipped when promtool is not installed (CI installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROM = Path(__file__).resolve().parents[2] / "dashboards" / "prometheus"
pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)")


def promtool(*args: str, cwd: Path = PROM) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd)


def test_check_rules():
    proc = promtool("check", "rules", "rules/diffsvc.rules.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout


def test_rule_unit_tests():
    proc = promtool("test", "rules", "tests/diffsvc.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unit_tests_catch_a_wrong_threshold(tmp_path):
    """The unit tests can fail: with the mismatch threshold raised they do."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    rules = (PROM / "rules/diffsvc.rules.yml").read_text().replace("> 0.05", "> 0.5")
    (tmp_path / "rules/diffsvc.rules.yml").write_text(rules)
    shutil.copy(PROM / "tests/diffsvc.test.yml", tmp_path / "tests")
    proc = promtool("test", "rules", "tests/diffsvc.test.yml", cwd=tmp_path)
    assert proc.returncode != 0


def test_check_config():
    proc = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
