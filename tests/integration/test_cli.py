"""The `diffsvc` command: every subcommand has --help; bad config fails before listening."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from diffsvc import cli
from diffsvc.ops.embedded import free_port


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[
        tuple[str, ...]]:
    """Every subcommand path, nested ones included, from the parser itself."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _commands(sub, (*prefix, name))


COMMANDS = sorted(set(_commands(cli.build_parser())))


def test_the_spine_commands_exist() -> None:
    assert {("gateway",), ("worker",), ("report",), ("up",), ("demo",)} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_subcommand_has_help(command: tuple[str, ...],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: diffsvc " + " ".join(command))


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DIFFSVC_")}


def run(*args: str, env: dict[str, str] | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                          env=env or _env(), stdin=subprocess.DEVNULL, check=False)


def test_python_dash_m_help() -> None:
    done = run(sys.executable, "-m", "diffsvc", "--help")
    assert done.returncode == 0, done.stderr
    for command in ("gateway", "worker", "report", "up", "demo"):
        assert command in done.stdout


def test_console_script_help() -> None:
    script = shutil.which("diffsvc") or str(Path(sys.executable).parent / "diffsvc")
    assert Path(script).exists(), "the `diffsvc` console script is not installed (pip install -e .)"
    done = run(script, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: diffsvc")


def test_no_subcommand_is_a_usage_error() -> None:
    done = run(sys.executable, "-m", "diffsvc")
    assert done.returncode == 64  # EX_USAGE
    assert "usage:" in done.stderr


def _nothing_listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(
    ("yaml_text", "flags", "env", "key"),
    [
        ("colour: blue\n", (), {}, "colour"),
        ("primary: ftp://prod.example\n", (), {}, "primary"),
        ("", ("--candidate", "http://"), {}, "candidate"),
        ("", (), {"DIFFSVC_SAMPLE_RATE": "3"}, "sample_rate"),
        ("ignore:\n  fields: [request_id]\n", (), {}, "ignore.fields[0]"),
        ("", ("--shadow-timeout", "soon"), {}, "shadow_timeout"),
    ],
)
def test_bad_config_makes_gateway_exit_naming_the_key(tmp_path: Path, redis_url: str,
                                                      yaml_text: str, flags: tuple[str, ...],
                                                      env: dict[str, str], key: str) -> None:
    port = free_port()
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    args = [sys.executable, "-m", "diffsvc", "gateway", "--config", str(path),
            "--listen", f"127.0.0.1:{port}", "--redis-url", redis_url, *flags]
    if "primary" not in yaml_text:
        args += ["--primary", "http://127.0.0.1:9"]
    done = run(*args, env={**_env(), **env})
    assert done.returncode == 78  # EX_CONFIG
    assert "config key " in done.stderr and key in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert "listening" not in done.stdout
    assert _nothing_listens(port)


def test_gateway_without_primary_names_it(redis_url: str) -> None:
    done = run(sys.executable, "-m", "diffsvc", "gateway", "--listen",
               f"127.0.0.1:{free_port()}", "--redis-url", redis_url)
    assert done.returncode != 0
    assert "'primary'" in done.stderr and "DIFFSVC_PRIMARY" in done.stderr
