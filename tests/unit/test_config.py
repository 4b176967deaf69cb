"""Config: YAML file < DIFFSVC_* environment < CLI flags; every bad value names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from diffsvc import config
from diffsvc.cli import build_parser
from diffsvc.config import SETTINGS, Config, env_name, flag_name, load
from diffsvc.errors import ConfigError, RuleError

PRIMARY = "http://127.0.0.1:9001"
CANDIDATE = "http://127.0.0.1:9002"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "diffsvc.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    cfg = load(env={})
    assert cfg.listen == "127.0.0.1:8080"
    assert cfg.sample_rate == 1.0
    assert cfg.allow_side_effects is False
    assert cfg.primary is None and cfg.redis_url is None
    assert cfg.ignore == {"fields": [], "headers": []}
    assert cfg.routes == []


def test_yaml_file(tmp_path: Path) -> None:
    path = write(tmp_path, f"""
listen: 0.0.0.0:9000
primary: {PRIMARY}/
candidate: {CANDIDATE}
redis_url: redis://127.0.0.1:6390/2
sample_rate: 0.25
allow_side_effects: yes
max_inflight: 7
shadow_timeout: 250ms
retention: 2h
ignore:
  fields: [$.request_id, $..generated_at, "$.items[*].updated_at"]
  headers: [X-Trace]
routes:
  - match: GET /api/users/{{id}}
    name: users
    ignore: {{fields: [$.last_login]}}
report:
  listen: 127.0.0.1:9100
""")
    cfg = load(path, env={})
    assert cfg.listen == "0.0.0.0:9000"
    assert cfg.primary == PRIMARY  # trailing slash dropped
    assert cfg.candidate == CANDIDATE
    assert cfg.redis_url == "redis://127.0.0.1:6390/2"
    assert cfg.sample_rate == 0.25
    assert cfg.allow_side_effects is True
    assert cfg.max_inflight == 7
    assert cfg.shadow_timeout == pytest.approx(0.25)
    assert cfg.retention == 7200
    assert cfg.ignore["fields"] == ["$.request_id", "$..generated_at", "$.items[*].updated_at"]
    assert cfg.ignore["headers"] == ["X-Trace"]
    assert cfg.routes[0]["name"] == "users"
    assert cfg.routes[0]["ignore"] == {"fields": ["$.last_login"], "headers": []}
    assert cfg.report_listen == "127.0.0.1:9100"


def test_environment_variables() -> None:
    env = {"DIFFSVC_PRIMARY": PRIMARY, "DIFFSVC_SAMPLE_RATE": "0.5",
           "DIFFSVC_ALLOW_SIDE_EFFECTS": "true", "DIFFSVC_SHADOW_TIMEOUT": "3s",
           "DIFFSVC_IGNORE": "{fields: [$.a]}", "DIFFSVC_REPORT_LISTEN": "127.0.0.1:1",
           "UNRELATED": "x"}
    cfg = load(env=env)
    assert (cfg.primary, cfg.sample_rate, cfg.allow_side_effects) == (PRIMARY, 0.5, True)
    assert cfg.shadow_timeout == 3.0
    assert cfg.ignore["fields"] == ["$.a"]
    assert cfg.report_listen == "127.0.0.1:1"


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "sample_rate: 0.1\n")
    assert load(env={"DIFFSVC_CONFIG": str(path)}).sample_rate == 0.1


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path, f"primary: {PRIMARY}\nsample_rate: 0.1\nmax_inflight: 5\n"
                           "shadow_timeout: 1s\n")
    env = {"DIFFSVC_SAMPLE_RATE": "0.2", "DIFFSVC_MAX_INFLIGHT": "6"}
    cfg = load(path, env=env, overrides={"sample_rate": "0.3", "shadow_timeout": None})
    assert cfg.primary == PRIMARY  # file only
    assert cfg.max_inflight == 6  # env beats file
    assert cfg.sample_rate == 0.3  # flag beats env
    assert cfg.shadow_timeout == 1.0  # an unset flag (None) changes nothing


def test_cli_flags_are_generated_and_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, f"primary: {PRIMARY}\nsample_rate: 0.1\nallow_side_effects: true\n")
    monkeypatch.setenv("DIFFSVC_SAMPLE_RATE", "0.2")
    monkeypatch.delenv("DIFFSVC_CONFIG", raising=False)
    args = build_parser().parse_args([
        "gateway", "--config", str(path), "--sample-rate", "0.9", "--no-allow-side-effects",
        "--redis-url", "redis://127.0.0.1:1/0", "--ignore-field", "$.x", "--ignore-header", "X-A"])
    cfg = config.from_args(args)
    assert cfg.sample_rate == 0.9
    assert cfg.allow_side_effects is False
    assert cfg.redis_url == "redis://127.0.0.1:1/0"
    assert cfg.ignore == {"fields": ["$.x"], "headers": ["X-A"]}


def test_ignore_field_flag_with_bad_path_names_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFFSVC_CONFIG", raising=False)
    args = build_parser().parse_args(["gateway", "--ignore-field", "oops"])
    with pytest.raises(RuleError) as info:
        config.from_args(args)
    assert info.value.key.startswith("ignore.fields")


@pytest.mark.parametrize(
    ("raw", "key", "reason"),
    [
        ({"colour": "blue"}, "colour", "unknown key"),
        ({"primry": "http://h:1"}, "primry", "did you mean 'primary'? `diffsvc COMMAND --help`"),
        ({"primary": "ftp://example.com"}, "primary", "http"),
        ({"candidate": "http://"}, "candidate", "no host"),
        ({"primary": "http://h:99999"}, "primary", "port"),
        ({"primary": "http://h/?q=1"}, "primary", "query"),
        ({"redis_url": "http://127.0.0.1:6379"}, "redis_url", "redis://"),
        ({"listen": "8080"}, "listen", "HOST:PORT"),
        ({"sample_rate": 1.5}, "sample_rate", "between 0"),
        ({"sample_rate": -0.1}, "sample_rate", "between 0"),
        ({"sample_rate": "lots"}, "sample_rate", "float"),
        ({"max_inflight": 0}, "max_inflight", "at least 1"),
        ({"allow_side_effects": "maybe"}, "allow_side_effects", "true or false"),
        ({"shadow_timeout": "5 parsecs"}, "shadow_timeout", "duration"),
        ({"retention": "0s"}, "retention", "greater than zero"),
        ({"ignore": {"fields": ["request_id"]}}, "ignore.fields[0]", "JSONPath"),
        ({"ignore": {"fields": ["$.ok", "$.items["]}}, "ignore.fields[1]", "unclosed"),
        ({"ignore": {"fieldz": []}}, "ignore.fieldz", "unknown key"),
        ({"ignore": {"fields": "$.a"}}, "ignore.fields", "list of strings"),
        ({"routes": [{"match": "users"}]}, "routes[0].match", "METHOD"),
        ({"routes": [{"match": "GET /a", "colour": 1}]}, "routes[0].colour", "unknown key"),
        ({"routes": [{"match": "GET /a", "ignore": {"fields": ["$.[x"]}}]},
         "routes[0].ignore.fields[0]", ""),
    ],
)
def test_bad_values_name_the_key(raw: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(env={}, overrides=raw)
    assert info.value.key.startswith(key), info.value.key
    assert key in str(info.value)
    assert reason in str(info.value)


def test_bad_value_in_file_and_env_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'colour'"):
        load(write(tmp_path, "colour: blue\n"), env={})
    with pytest.raises(ConfigError, match="'report.colour'"):
        load(write(tmp_path, "report: {colour: blue}\n"), env={})
    with pytest.raises(ConfigError, match="'sample_rate'"):
        load(env={"DIFFSVC_SAMPLE_RATE": "2"})
    with pytest.raises(ConfigError, match="'config'"):
        load(write(tmp_path, "- a list\n"), env={})
    with pytest.raises(ConfigError, match="'config'"):
        load(tmp_path / "missing.yaml", env={})
    with pytest.raises(ConfigError, match="'config'"):
        load(write(tmp_path, "a: [unclosed\n"), env={})


def test_require_names_the_missing_key() -> None:
    with pytest.raises(ConfigError) as info:
        Config().require("primary")
    assert info.value.key == "primary"
    assert "--primary" in str(info.value) and "DIFFSVC_PRIMARY" in str(info.value)


@pytest.mark.parametrize(("text", "seconds"),
                         [("500ms", 0.5), ("30s", 30), ("15m", 900), ("24h", 86400),
                          ("7d", 604800), ("2", 2), (1.5, 1.5)])
def test_durations(text: Any, seconds: float) -> None:
    assert config.parse_duration("k", text) == pytest.approx(seconds)


def test_every_setting_has_env_var_flag_and_help() -> None:
    help_text = build_parser().format_help()
    assert "gateway" in help_text
    for key, f in SETTINGS.items():
        assert f.metadata["help"], key
        assert env_name(key).startswith("DIFFSVC_")
        assert flag_name(key).startswith("--") and "_" not in flag_name(key)


def test_round_trip_through_written_file(tmp_path: Path) -> None:
    cfg = load(env={}, overrides={"primary": PRIMARY, "sample_rate": 0.5,
                                  "ignore": {"fields": ["$.a"], "headers": []},
                                  "report.listen": "127.0.0.1:7"})
    config.write_file(cfg, tmp_path / "c.yaml")
    assert load(tmp_path / "c.yaml", env={}) == cfg


def test_readme_settings_table_lists_every_setting() -> None:
    """The README's table is generated from SETTINGS; this keeps it from drifting."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    begin = readme.index("<!-- settings:begin")
    table = readme[begin:readme.index("<!-- settings:end -->", begin)]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells
    fix = "run: python docs/settings_table.py"
    assert set(rows) == set(SETTINGS), f"README settings table is out of date; {fix}"
    for key, f in SETTINGS.items():
        assert rows[key][1] == f"`{env_name(key)}`", f"{key}: {fix}"
        if f.metadata["flag"]:
            assert f"`{flag_name(key)}`" in rows[key][2], f"{key}: {fix}"


@pytest.mark.parametrize("key", ["sample_rate", "noise.min_relative"])
def test_nan_is_refused_naming_the_key(key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config.load(env={}, overrides={key: "nan"})
    assert exc.value.key == key
