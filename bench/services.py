"""The processes the benchmark starts: nginx (upstreams and the mirror reference), the slow
candidate, redis-server, diffsvc gateway and workers. All on 127.0.0.1, all stopped on exit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from diffsvc.ops.embedded import free_port
from diffsvc.ops.stack import wait_listening

ROOT = Path(__file__).resolve().parent.parent
API_PATH = "/api/orders/1001"
# fast: nginx; slow: answers after 50 ms; dead: a closed port (connection refused);
# hung: accepts the connection and the request, never answers
CANDIDATES = ("fast", "slow", "dead", "hung")

_NGINX = """
user root;
worker_processes {workers};
daemon off;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}.err crit;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
{http}
}}
"""

_UPSTREAMS = """
  server {{
    listen 127.0.0.1:{primary} backlog=4096;
    listen 127.0.0.1:{candidate} backlog=4096;
    root {tmp}/www;
    location / {{ default_type application/json; try_files /order.json =404; }}
  }}
"""

_MIRROR_PRIMARY = "  upstream primary {{ server 127.0.0.1:{primary}; keepalive 64; }}\n"

_MIRROR_SERVER = """
  upstream cand_{name} {{ server 127.0.0.1:{port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{listen} backlog=4096;
    location / {{
      mirror /_mirror;
      proxy_pass http://primary;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
    location = /_mirror {{
      internal;
      proxy_pass http://cand_{name}$request_uri;
      proxy_connect_timeout 2s;  # as diffsvc's --shadow-timeout in the benchmark
      proxy_read_timeout 2s;
      proxy_send_timeout 2s;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Diffsvc-Shadow 1;
    }}
  }}
"""


def _nginx_conf(path: Path, workers: int, http: str) -> Path:
    """Write an nginx config named after `path`'s stem (its pid and error log beside it)."""
    path.write_text(_NGINX.format(tmp=path.parent, name=path.stem, workers=workers, http=http))
    return path


class Services:
    """Start with `with Services(tmp, body, processes) as s:`; ports are in attributes."""

    def __init__(self, tmp: Path, body: bytes, processes: int) -> None:
        self.tmp = tmp
        self.body = body
        self.processes = processes
        self.procs: list[subprocess.Popen[bytes]] = []
        self.primary = free_port()
        self.candidates = {name: free_port() for name in CANDIDATES}  # their ports
        self.mirror = {name: free_port() for name in CANDIDATES}  # nginx mirror to each

    def candidate(self, name: str) -> str:
        return f"http://127.0.0.1:{self.candidates[name]}"

    def spawn(self, args: list[str], stderr: int | None = subprocess.DEVNULL
              ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def __enter__(self) -> Services:
        (self.tmp / "www").mkdir(parents=True, exist_ok=True)
        (self.tmp / "www" / "order.json").write_bytes(self.body)
        ports = self.candidates
        up = _nginx_conf(self.tmp / "upstreams.conf", 1, _UPSTREAMS.format(
            tmp=self.tmp, primary=self.primary, candidate=ports["fast"]))
        mirror = _nginx_conf(self.tmp / "mirror.conf", self.processes, _MIRROR_PRIMARY.format(
            primary=self.primary) + "".join(_MIRROR_SERVER.format(
                name=n, port=ports[n], listen=self.mirror[n]) for n in CANDIDATES))
        p = self.spawn(["nginx", "-p", str(self.tmp), "-c", str(up)])
        wait_listening(f"127.0.0.1:{self.primary}", p)
        p = self.spawn(["nginx", "-p", str(self.tmp), "-c", str(mirror)])
        wait_listening(f"127.0.0.1:{self.mirror['fast']}", p)
        self.mirror_pid = p.pid
        for name, delay in (("slow", "0.05"), ("hung", "-1")):
            p = self.spawn([sys.executable, "-m", "bench.slow_upstream", str(ports[name]),
                            str(self.tmp / "www" / "order.json"), delay])
            wait_listening(f"127.0.0.1:{ports[name]}", p)
        return self

    def gateway(self, candidate: str, redis_url: str, port: int) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "diffsvc", "gateway", "--listen", f"127.0.0.1:{port}",
                "--primary", f"http://127.0.0.1:{self.primary}",
                "--candidate", self.candidate(candidate), "--redis-url", redis_url,
                "--shadow-timeout", "2s"]
        if self.processes > 1:
            args += ["--processes", str(self.processes)]
        p = self.spawn(args, stderr=None)
        wait_listening(f"127.0.0.1:{port}", p)
        time.sleep(0.3 if self.processes == 1 else 1.0)  # every process has bound the port
        return p

    def workers(self, config_file: Path, processes: int = 1) -> subprocess.Popen[bytes]:
        return self.spawn([sys.executable, "-m", "diffsvc", "worker", "--config", str(config_file),
                           "--workers", str(processes)], stderr=None)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            self.stop(proc, 5)


def _tree(pid: int) -> list[int]:
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) of pid and its live descendants: what a
    process costs whatever else the shared machine runs, unlike its throughput."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of pid and its descendants (the gateway's --processes copies, a
    worker's forks), in MB: (the total, the largest single process)."""
    sizes = []
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
    return sum(sizes), max(sizes, default=0.0)
