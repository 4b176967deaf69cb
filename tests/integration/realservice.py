"""A real service for the upgrade acceptance test: pypiserver (a PyPI-compatible package
index, maintained, on PyPI, none of us wrote it), each release in its own virtualenv, cached
under a directory keyed by version so reruns start at once; a folder of package files it
serves; one instance per call of `start`."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("DIFFSVC_TEST_CACHE", Path.home() / ".cache" / "diffsvc-tests"))
PIP_TIMEOUT = 240  # seconds for one `pip install` (two releases: about 20 s on a warm cache)

# projects (name as the files spell it) and their released versions
PROJECTS = {
    "alpha": ["0.1.0", "0.2.0", "1.0.0"], "beta_tools": ["2.3.1", "2.4.0"],
    "Gamma-Lib": ["0.9", "1.0rc1", "1.0"], "delta": ["3.1.4"], "epsilon.core": ["1.0", "1.1"],
    "zeta": ["0.0.1"], "eta-utils": ["5.0.0", "5.0.1"], "theta": ["1.2.3"],
    "iota_client": ["0.3", "0.4"], "kappa": ["10.0"],
}


def venv(version: str) -> Path:
    """The virtualenv with pypiserver==version, created (and cached) on first use."""
    home = CACHE / f"pypiserver-{version}"
    ready = home / ".installed"
    if ready.exists():
        return home
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True,
                   timeout=120)
    done = subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", f"pypiserver=={version}"],
                          capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip install pypiserver=={version} failed: {done.stderr[-800:]}")
    ready.write_text(version)
    return home


def package_files(root: Path) -> list[str]:
    """A small sdist and wheel of each project version; returns the file names."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for project, versions in PROJECTS.items():
        for v in versions:
            sdist = root / f"{project}-{v}.tar.gz"
            with tarfile.open(sdist, "w:gz") as tar:
                data = f"Metadata-Version: 2.1\nName: {project}\nVersion: {v}\n".encode()
                info = tarfile.TarInfo(f"{project}-{v}/PKG-INFO")
                info.size, info.mtime = len(data), 1_700_000_000
                tar.addfile(info, io.BytesIO(data))
            wheel = root / f"{project.replace('-', '_').replace('.', '_')}-{v}-py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w") as zf:
                zf.writestr(zipfile.ZipInfo("METADATA", (2024, 1, 1, 0, 0, 0)),
                            f"Name: {project}\nVersion: {v}\n")
            names += [sdist.name, wheel.name]
    return names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Instance:
    """One pypiserver process on 127.0.0.1 serving `packages` (anyone may upload, no
    fallback to the public index)."""

    def __init__(self, version: str, packages: Path) -> None:
        port = _free_port()
        self.version, self.url = version, f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(venv(version) / "bin" / "pypi-server"), "run", "-p", str(port),
             "-i", "127.0.0.1", "-a", ".", "-P", ".", "--disable-fallback",
             "--hash-algo", "sha256", "--server", "wsgiref", str(packages)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/simple/", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pypiserver {version} did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
