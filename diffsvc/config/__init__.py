"""Settings, declared once (settings.py) with their value parsers (parse.py), read from one
YAML file, `DIFFSVC_*` environment variables and CLI flags (load.py), and checked at start-up:
a bad value raises ConfigError naming the key, before anything listens."""

from diffsvc.config.load import (
    add_flags,
    from_args,
    load,
    read_file,
    to_mapping,
    write_file,
)
from diffsvc.config.parse import (
    ENV_PREFIX,
    is_loopback,
    parse_duration,
    parse_ignore,
    parse_listen,
    parse_routes,
    parse_rule_paths,
    parse_tolerance,
    ranged,
    split_listen,
)
from diffsvc.config.settings import SETTINGS, Config, env_name, flag_name, setting_key

__all__ = [
    "ENV_PREFIX", "SETTINGS", "Config", "add_flags", "env_name", "flag_name", "from_args",
    "is_loopback", "load", "parse_duration", "parse_ignore", "parse_listen", "parse_routes",
    "parse_rule_paths", "parse_tolerance", "ranged", "read_file", "setting_key",
    "split_listen", "to_mapping", "write_file",
]
