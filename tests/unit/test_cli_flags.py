"""Every command's flags come from the settings' `commands=` tags. This checks the tags
against the code: every setting read (`cfg.<name>`) in the modules a command runs is tagged
with that command, so it has the command's flag; and --help shows defaults as written."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

from diffsvc import cli, config
from diffsvc.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
# the modules each command runs (what they import, transitively, is scanned too)
ENTRIES = {
    "gateway": ["diffsvc.gateway"],
    "worker": ["workers.main"],
    "serve": ["diffsvc.report.server", "diffsvc.report.notifier", "diffsvc.report.metrics",
              "diffsvc.report.gate"],
    "report": ["diffsvc.report.data", "diffsvc.report.formats"],
    "rules": ["diffsvc.report.data", "diffsvc.report.suggest", "diffsvc.storage.rulestore"],
    "data": ["diffsvc.storage.store"],
    "gate": ["diffsvc.report.gate"],
    "replay": ["diffsvc.ops.replay"],
}
FIELDS = {f.name: key for key, f in SETTINGS.items()}


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imports(name: str, tree: ast.Module) -> set[str]:
    """The diffsvc/workers modules imported at module level (`from pkg import mod`: only mod)."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if node.level:
                module = ".".join(name.split(".")[: -node.level] + [node.module])
            submodules = {f"{module}.{a.name}" for a in node.names}
            found.update({m for m in submodules if module_file(m)} or {module})
    return {m for m in found if m.split(".")[0] in ("diffsvc", "workers")
            and not m.startswith("diffsvc.config") and module_file(m)}


def is_config(node: ast.expr) -> bool:
    """cfg, self.cfg, config, app[...CONFIG]: how the code names the Config it was given."""
    if isinstance(node, ast.Subscript):
        return ast.unparse(node.slice).endswith("CONFIG")
    return ast.unparse(node) in ("cfg", "self.cfg", "config", "self.config")


def config_reads(path: Path, tree: ast.AST, read: dict[str, str]) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FIELDS and is_config(node.value):
            read.setdefault(FIELDS[node.attr], f"{path.relative_to(ROOT)}:{node.lineno}")


def settings_read(command: str) -> dict[str, str]:
    """{setting key: where it is read} in the command's handlers in cli.py (`_<command>…`,
    and the helpers they call), its entry modules and everything they import."""
    read: dict[str, str] = {}
    cli_path = ROOT / "diffsvc" / "cli.py"
    functions = {node.name: node for node in ast.parse(cli_path.read_text(encoding="utf-8")).body
                 if isinstance(node, ast.FunctionDef)}
    todo = [name for name in functions if name.startswith(f"_{command}")]
    done: set[str] = set()
    while todo:  # the handlers and the cli.py helpers they call
        name = todo.pop()
        done.add(name)
        config_reads(cli_path, functions[name], read)
        todo.extend({n.func.id for n in ast.walk(functions[name]) if isinstance(n, ast.Call)
                     and isinstance(n.func, ast.Name) and n.func.id in functions} - done)
    seen: set[str] = set()
    todo = list(ENTRIES[command])
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        assert path is not None, name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        todo.extend(imports(name, tree) - seen)
        config_reads(path, tree, read)
    return read


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def flags_of(command: str) -> set[str]:
    """The options of `diffsvc command` (of every action under it: rules export/suggest)."""
    parser = subcommands(cli.build_parser())[command]
    parsers = [parser, *subcommands(parser).values()]
    return set.intersection(*({o for a in p._actions for o in a.option_strings} for p in parsers
                              if not subcommands(p)))


@pytest.mark.parametrize("command", sorted(ENTRIES))
def test_every_setting_a_command_reads_has_its_flag(command: str) -> None:
    read = settings_read(command)
    assert "redis_url" in read, f"{command}: the scan is broken (every command opens Redis)"
    flags = flags_of(command)
    for key, where in read.items():
        f = SETTINGS[key]
        assert command in f.metadata["commands"], \
            f"{where} reads {key!r} for `{command}`: add {command!r} to its commands="
        if f.metadata["flag"]:
            assert config.flag_name(key) in flags, f"`diffsvc {command}` lacks {config.flag_name(key)}"


def test_the_flags_that_drifted_are_there() -> None:
    """From issue 11: the gateway redacts, and serve runs the notifier and the metrics."""
    assert "--redact-query" in flags_of("gateway")
    serve = flags_of("serve")
    for flag in ("--notify-webhook-url", "--notify-threshold", "--noise-min-relative",
                 "--metrics-top-paths"):
        assert flag in serve, flag
    args = cli.build_parser().parse_args(["gateway", "--redact-query", "token,code"])
    assert config.from_args(args).redact_query == ["token", "code"]


def test_every_tag_is_a_command_and_every_flag_has_a_reader() -> None:
    for key, f in SETTINGS.items():
        assert set(f.metadata["commands"]) <= set(config.COMMANDS), key
        assert f.metadata["commands"], f"{key}: no command reads it; tag it with commands=(...)"


def test_help_shows_defaults_as_written() -> None:
    text = subcommands(cli.build_parser())["gateway"].format_help()
    text = re.sub(r"\s+", " ", text)
    assert "(default: 24h)" in text  # retention, not 86400.0
    assert "(default: 50ms)" in text  # flush_interval
    assert "access_token, id_token, refresh_token" in text  # redact.query's real list
    assert "(default: None)" not in text and "(default: [])" not in text
    assert "(default: false)" in text  # allow_side_effects


def test_format_duration_reads_back() -> None:
    for seconds in (86400.0, 300.0, 30.0, 5.0, 0.05, 0.25, 90.0, 1.5):
        shown = config.format_duration(seconds)
        assert config.parse_duration("d", shown) == pytest.approx(seconds), shown
    assert config.format_duration(86400) == "24h" and config.format_duration(0.05) == "50ms"
