"""Mirror-target mode behind Debian's real nginx (`mirror` directive, examples/nginx-mirror.conf)
gives the same report as the inline gateway for the same traffic."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from diffsvc import gateway
from diffsvc.demo import upstream
from diffsvc.demo.run import DEMO_IGNORE
from diffsvc.gateway.target import strip_shadow_host
from diffsvc.ops.embedded import free_port
from diffsvc.storage import store
from tests.conftest import DEMO_PATHS, run_worker_burst
from tests.integration.demo_helpers import report_summary, wait_captured

NGINX = "/usr/sbin/nginx"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nginx-mirror.conf"

_MAIN = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  include {tmp}/mirror.conf;
}}
"""


def _send(base: str, paths: list[str]) -> None:
    for path in paths:
        with urllib.request.urlopen(base + path, timeout=10) as resp:
            assert resp.status == 200
            resp.read()


@pytest.fixture
def nginx_mirror(tmp_path: Path) -> Iterator[Any]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed (apt-get install nginx)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(app_url: str, diffsvc_url: str) -> str:
        listen = f"127.0.0.1:{free_port()}"
        conf = (EXAMPLE.read_text()
                .replace("127.0.0.1:8000", app_url.removeprefix("http://"))
                .replace("127.0.0.1:9090", diffsvc_url.removeprefix("http://"))
                .replace("127.0.0.1:8088", listen))
        (tmp_path / "mirror.conf").write_text(conf)
        (tmp_path / "nginx.conf").write_text(_MAIN.format(tmp=tmp_path))
        (tmp_path / "logs").mkdir(exist_ok=True)
        proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                                 "-g", "daemon off;"], stderr=subprocess.PIPE)
        procs.append(proc)
        deadline = time.monotonic() + 10
        host, port = listen.split(":")
        while True:
            try:  # a TCP probe: an HTTP one would be mirrored too
                socket.create_connection((host, int(port)), timeout=1).close()
                return f"http://{listen}"
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_shadow_suffix_is_stripped_from_host() -> None:
    assert strip_shadow_host("api.example.com-shadow") == "api.example.com"
    assert strip_shadow_host("api.example.com-shadow:8080") == "api.example.com:8080"
    assert strip_shadow_host("api.example.com:8080") == "api.example.com:8080"
    assert strip_shadow_host("[::1]") == "[::1]"


def test_nginx_mirror_to_target_mode_matches_inline_report(serve, r, make_config, nginx_mirror):
    prod = serve(upstream.build_app("prod"))
    cand = serve(upstream.build_app("candidate"))
    ignore = {"fields": list(DEMO_IGNORE["fields"]), "headers": []}
    paths = DEMO_PATHS + ["/api/users/3", "/api/products/7"]

    inline_cfg = make_config(primary=prod.url, candidate=cand.url, ignore=ignore)
    gw = serve(gateway.build_app(inline_cfg))
    _send(gw.url, paths)
    wait_captured(r, len(paths), timeout=15)
    run_worker_burst(inline_cfg)
    inline = report_summary(r)
    assert sum(p for p, _, _ in inline.values()) == len(paths)
    assert any(rate > 0 for _, rate, _ in inline.values())  # the demo candidate regresses
    r.flushall()

    target_cfg = make_config(primary=prod.url, candidate=cand.url, ignore=ignore, mode="target")
    tgt = serve(gateway.build_app(target_cfg))
    front = nginx_mirror(prod.url, tgt.url)
    _send(front, paths)
    wait_captured(r, len(paths), timeout=15)
    run_worker_burst(target_cfg)
    target = report_summary(r)
    assert target == inline
    counters = store.gateway_counters(r)
    assert counters.get("mirrored") == len(paths), counters
    regressed = next(name for name, (_, rate, _) in target.items() if rate > 0)
    [sample] = store.samples(r, regressed, 1)
    exchange, _ = store.load_exchange(r, sample)
    assert exchange is not None
    host = exchange.request.header_value("host") or ""
    assert host == "127.0.0.1"  # nginx sent `$host-shadow`; diffsvc stripped the suffix
