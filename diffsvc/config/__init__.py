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
    format_duration,
    is_loopback,
    parse_bool,
    parse_duration,
    parse_ignore,
    parse_listen,
    parse_routes,
    parse_rule_paths,
    parse_tolerance,
    ranged,
    require_token,
    split_listen,
)
from diffsvc.config.settings import (
    COMMANDS,
    DATA,
    GATEWAY,
    RULES,
    SERVE,
    SETTINGS,
    WORKER,
    Config,
    default_text,
    env_name,
    flag_name,
    read_by,
    setting_key,
)

__all__ = [
    "COMMANDS", "DATA", "ENV_PREFIX", "GATEWAY", "RULES", "SERVE", "SETTINGS", "WORKER", "Config",
    "add_flags", "default_text", "env_name", "flag_name", "format_duration", "from_args",
    "is_loopback", "load", "require_token", "parse_bool", "parse_duration", "parse_ignore", "parse_listen",
    "parse_routes", "parse_rule_paths", "parse_tolerance", "ranged", "read_by", "read_file",
    "setting_key",
    "split_listen", "to_mapping", "write_file",
]
