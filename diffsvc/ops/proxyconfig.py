"""`diffsvc proxy-config envoy|nginx|istio`: complete, runnable proxy configs that serve
clients from primary and ship each exchange (the request and primary's actual response) to
a diffsvc collector (`diffsvc gateway --mode collect`). The part to copy into an existing
config is marked `diffsvc BEGIN` … `diffsvc END`.

The collector URL is given without a path: diffsvc chooses it (collectwire.EXCHANGES_PATH)."""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from diffsvc import errors
from diffsvc.config import Config, parse_listen, split_listen
from diffsvc.errors import ConfigError
from diffsvc.gateway.collectwire import EXCHANGES_PATH

TEMPLATES = Path(__file__).parent / "proxytemplates"
PROXIES = ("envoy", "nginx", "istio")
CLUSTER = "diffsvc_collector"
SHIP_TIMEOUT_MS = 2000
NGINX_MODULES = "/usr/lib/nginx/modules"


class UsageError(errors.UsageError):
    """A flag of proxy-config is missing or wrong; names the flag (exit status 64)."""

    def __init__(self, flag: str, reason: str, value: object = None) -> None:
        super().__init__(f"{flag}: {reason}" + ("" if value is None else f" (got {value!r})"))


@dataclass(frozen=True)
class Options:
    proxy: str
    collector: str
    listen: str | None = None
    primary: str | None = None
    sample_rate: float = 1.0
    token: str = ""
    max_request_body: int = Config.mirror_max_body
    max_response_body: int = Config.max_body
    selector: str | None = None  # istio: the workload's label, NAME=VALUE
    resolver: str | None = None  # nginx: DNS server, when the collector is a hostname


def _host_port(key: str, url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UsageError(key, "expected http://HOST:PORT", url)
    if parts.path not in ("", "/") or parts.query:
        raise UsageError(key, "give the URL without a path: diffsvc chooses it", url)
    host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
    return host, parts.port or 80


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    return template


def _lua_string(text: str) -> str:
    if any(c in text for c in "\"\\\n\r"):
        raise UsageError("--token", "cannot hold quotes, backslashes or line breaks", "…")
    return text


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else "" for line in text.splitlines())


def _args(opts: Options) -> str:
    """The command line that makes this config (its first comment)."""
    argv = [opts.proxy]
    for name in ("listen", "primary", "collector", "selector", "resolver"):
        if getattr(opts, name):
            argv += [f"--{name}", getattr(opts, name)]
    if opts.sample_rate != 1:
        argv += ["--sample-rate", f"{opts.sample_rate:g}"]
    if opts.token:
        argv += ["--token", "…"]
    return shlex.join(argv)


def render(opts: Options) -> str:
    """The config file's text."""
    if not 0 <= opts.sample_rate <= 1:
        raise UsageError("--sample-rate", "expected a share from 0 to 1", opts.sample_rate)
    chost, cport = _host_port("--collector", opts.collector)
    values = {"ARGS": _args(opts), "CLUSTER": CLUSTER, "AUTHORITY": f"{chost}:{cport}",
              "PATH": EXCHANGES_PATH, "TOKEN": _lua_string(opts.token),
              "SAMPLE_RATE": repr(float(opts.sample_rate)),
              "MAX_REQUEST_BODY": str(opts.max_request_body),
              "MAX_RESPONSE_BODY": str(opts.max_response_body),
              "TIMEOUT_MS": str(SHIP_TIMEOUT_MS), "COLLECTOR_HOST": chost,
              "COLLECTOR_PORT": str(cport),
              "COLLECTOR_TYPE": "STATIC" if _is_ip(chost) else "STRICT_DNS",
              "KEEP_MARK": "true" if opts.proxy == "istio" else "false"}
    if opts.proxy == "istio":
        if not opts.selector or "=" not in opts.selector:
            raise UsageError("--selector", "proxy-config istio needs the workload's label, "
                                            "e.g. --selector app=shop", opts.selector)
        label, _, value = opts.selector.partition("=")
        values.update(LABEL=label, LABEL_VALUE=value,
                      CLUSTER=f"outbound|{cport}||{chost}")
        lua = _fill((TEMPLATES / "envoy-ship.lua").read_text(), values)
        return _fill((TEMPLATES / "istio.yaml").read_text(), {**values, "LUA": _indent(lua, 14)})
    if not opts.listen or not opts.primary:
        raise UsageError("--listen" if not opts.listen else "--primary",
                          f"proxy-config {opts.proxy} needs --listen HOST:PORT and --primary URL")
    try:
        lhost, lport = split_listen(parse_listen("--listen", opts.listen))
    except ConfigError:
        raise UsageError("--listen", "expected HOST:PORT, e.g. 0.0.0.0:8080", opts.listen) from None
    phost, pport = _host_port("--primary", opts.primary)
    values.update(LISTEN_HOST=lhost, LISTEN_PORT=str(lport),
                  PRIMARY_HOST=phost, PRIMARY_PORT=str(pport),
                  PRIMARY_TYPE="STATIC" if _is_ip(phost) else "STRICT_DNS")
    if opts.proxy == "envoy":
        lua = _fill((TEMPLATES / "envoy-ship.lua").read_text(), values)
        return _fill((TEMPLATES / "envoy.yaml").read_text(), {**values, "LUA": _indent(lua, 18)})
    if not _is_ip(chost) and not opts.resolver:
        raise UsageError("--resolver", "nginx needs a DNS server to reach a collector by name "
                                        f"({chost}): give --resolver IP or an IP collector URL")
    listen = f"[{lhost}]:{lport}" if ":" in lhost else f"{lhost}:{lport}"
    values.update(MODULES=NGINX_MODULES, LISTEN=listen,
                  RESOLVER=f"resolver {opts.resolver} valid=30s;" if opts.resolver else "")
    lua = _fill((TEMPLATES / "nginx-ship.lua").read_text(), values)
    return _fill((TEMPLATES / "nginx.conf").read_text(), {**values, "LUA": _indent(lua, 4)})
