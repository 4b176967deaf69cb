"""Exit statuses have one meaning each; --help and the README's table list every one."""

from __future__ import annotations

import re
from pathlib import Path

from diffsvc import cli, errors

README = Path(__file__).resolve().parents[2] / "README.md"


def test_statuses_are_distinct_and_sysexits() -> None:
    codes = [errors.EXIT_USAGE, errors.EXIT_DATAERR, errors.EXIT_NOINPUT,
             errors.EXIT_UNAVAILABLE, errors.EXIT_SOFTWARE, errors.EXIT_CONFIG]
    assert codes == [64, 65, 66, 69, 70, 78]
    assert (errors.EXIT_OK, errors.EXIT_FAIL, errors.EXIT_INCONCLUSIVE) == (0, 1, 2)
    assert errors.ConfigError("k", "r").exit_code == 78
    assert errors.UsageError("x").exit_code == 64
    assert errors.UnreadableError("f", "r").exit_code == 66
    assert errors.InputError("f", "r").exit_code == 65


def test_help_and_readme_list_every_status() -> None:
    text = cli.build_parser().format_help()
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", README.read_text(encoding="utf-8"), re.M))
    for code, meaning in errors.EXIT_CODES.items():
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}$", text, re.M), code
        assert str(code) in rows, f"README's exit status table lacks {code}"
