"""Reading the settings: file < environment < CLI flags, every value checked and every rule
compiled once, so a bad config fails at start-up naming the key. This module is the only
reader of the environment."""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from diffsvc.config import tls
from diffsvc.config.parse import ENV_PREFIX, parse_bool, parse_ignore
from diffsvc.config.settings import SETTINGS, Config, default_text, env_name, flag_name, read_by
from diffsvc.core.rules import RuleSet
from diffsvc.errors import ConfigError


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and f"{key}." in {s[: len(key) + 1] for s in SETTINGS}:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("config", f"cannot read file: {exc.strerror}", str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError("config", f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must hold a mapping of settings")
    return _flatten(data)


def load(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Config:
    """Build the Config from file < environment < overrides (CLI flags), all checked."""
    raw: dict[str, Any] = {}
    env = os.environ if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    if path is not None:
        raw.update(read_file(path))
    for key in SETTINGS:
        if env_name(key) in env:
            raw[key] = env[env_name(key)]
    for key, value in (overrides or {}).items():
        if value is not None:
            raw[key] = value
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], SETTINGS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(unknown[0], f"unknown key ({hint}`diffsvc COMMAND --help` lists the "
                                      "settings)")
    values = {SETTINGS[k].name: SETTINGS[k].metadata["parse"](k, v) for k, v in raw.items()}
    cfg = Config(**values)
    RuleSet.from_config(cfg)  # validates every rule now, naming the bad one
    tls.check(cfg)  # loads every TLS file now, naming the bad one
    return cfg


def to_mapping(cfg: Config) -> dict[str, Any]:
    """The config as the YAML file that would produce it (for child processes)."""
    out: dict[str, Any] = {}
    for key, f in SETTINGS.items():
        head, _, tail = key.partition(".")
        value = getattr(cfg, f.name)
        if tail:
            out.setdefault(head, {})[tail] = value
        else:
            out[key] = value
    return out


def write_file(cfg: Config, path: str | os.PathLike[str]) -> None:
    Path(path).write_text(yaml.safe_dump(to_mapping(cfg), sort_keys=False), encoding="utf-8")


# ---- CLI flags, generated from the settings --------------------------------------------------

def add_flags(parser: argparse.ArgumentParser, commands: Iterable[str] | None = None) -> None:
    """--config, and a flag for every setting these commands read (every setting: None)."""
    parser.add_argument("--config", metavar="FILE", help="YAML config file (or DIFFSVC_CONFIG)")
    group = parser.add_argument_group("settings (also DIFFSVC_<KEY> and the config file)")
    keys = set(SETTINGS) if commands is None else {k for c in commands for k in read_by(c)}
    for key, f in SETTINGS.items():
        if key not in keys or not f.metadata["flag"]:
            continue
        shown = "" if default_text(f) == "unset" else f" (default: {default_text(f)})"
        kwargs: dict[str, Any] = {"dest": f"setting:{key}", "default": None,
                                  "help": f"{f.metadata['help']}{shown}".replace("%", "%%")}
        if f.metadata["parse"] is parse_bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = f.metadata["metavar"] or key.split(".")[-1].upper()
        group.add_argument(flag_name(key), **kwargs)
    if "ignore" in keys:
        group.add_argument("--ignore-field", action="append", metavar="JSONPATH", default=None,
                           help="add a JSONPath to ignore.fields (repeatable)")
        group.add_argument("--ignore-header", action="append", metavar="NAME", default=None,
                           help="add a header name to ignore.headers (repeatable)")


def from_args(args: argparse.Namespace) -> Config:
    overrides = {k.split(":", 1)[1]: v for k, v in vars(args).items() if k.startswith("setting:")}
    cfg = load(getattr(args, "config", None), overrides=overrides)
    extra_fields = getattr(args, "ignore_field", None) or []
    extra_headers = getattr(args, "ignore_header", None) or []
    if extra_fields or extra_headers:
        ignore = {"fields": cfg.ignore["fields"] + extra_fields,
                  "headers": cfg.ignore["headers"] + extra_headers}
        cfg = replace(cfg, ignore=parse_ignore("ignore", ignore))
        RuleSet.from_config(cfg)
    return cfg
