"""TLS with a private CA made in the test (the `cryptography` package): https upstreams
checked against tls.ca_file (primary, secondary, candidate, replay), tls.verify, mTLS with
tls.cert_file/tls.key_file, and the gateway and report server listening with TLS."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis import Redis

from diffsvc import cli, config, gateway
from diffsvc.errors import ConfigError
from diffsvc.ops.embedded import free_port
from diffsvc.ops.stack import wait_listening
from diffsvc.storage import store
from tests.conftest import ServedApp, run_worker_burst
from tests.integration.test_cli import _env


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""

    def __init__(self, where: Path) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        self.where = where
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder().subject_name(_name("diffsvc test CA"))
              .issuer_name(_name("diffsvc test CA")).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        _write(where / "ca", ca, ca_key)
        for name, san in (("server", [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                      x509.DNSName("localhost")]), ("client", None)):
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca.subject)
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(minutes=5))
                       .not_valid_after(now + datetime.timedelta(days=1)))
            if san:
                builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
            _write(where / name, builder.sign(ca_key, hashes.SHA256()), key)

    def path(self, name: str) -> str:
        return str(self.where / name)

    def server_context(self, *, require_client: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.path("server.pem"), self.path("server.key"))
        if require_client:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.path("ca.pem"))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.path("ca.pem"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


class TlsServedApp(ServedApp):
    def __init__(self, app: web.Application, ctx: ssl.SSLContext) -> None:
        super().__init__(app)
        self.ctx = ctx

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ctx)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"https://127.0.0.1:{port}"


def upstream(role: str) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        return web.json_response({"role": "same", "client_cert": bool(peer)})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
def https(pki: Pki) -> Any:
    served: list[ServedApp] = []

    def start(role: str, *, require_client: bool = False) -> str:
        s = TlsServedApp(upstream(role), pki.server_context(require_client=require_client))
        served.append(s.start())
        return s.url

    yield start
    for s in served:
        s.stop()


def get(url: str, ctx: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=ctx) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def through_gateway(serve: Callable[[web.Application], ServedApp], cfg: config.Config,
                    r: Redis) -> tuple[int, dict[str, Any]]:
    gw = serve(gateway.build_app(cfg))
    status, _ = get(gw.url + "/api/x")
    if status == 200:
        from tests.integration.test_gateway import wait_until

        wait_until(lambda: store.gateway_counters(r).get("captured", 0) >= 1, "captured")
        run_worker_burst(cfg)
    return status, store.endpoint_stats(r).get("GET /api/x", {})


def test_private_ca_for_primary_secondary_and_candidate(serve, https, make_config, pki: Pki,
                                                        r: Redis) -> None:
    urls = {role: https(role) for role in ("primary", "secondary", "candidate")}
    without = make_config(**urls)
    assert through_gateway(serve, without, r)[0] == 502  # CERTIFICATE_VERIFY_FAILED
    status, stats = through_gateway(serve, make_config(**urls, tls_ca_file=pki.path("ca.pem")), r)
    assert status == 200
    assert stats["pairs"] == 1 and stats["errors"] == 0 and stats["matches"] == 1, stats


def test_verify_off(serve, https, make_config, r: Redis) -> None:
    cfg = make_config(primary=https("primary"), candidate=https("candidate"), tls_verify=False)
    status, stats = through_gateway(serve, cfg, r)
    assert status == 200 and stats["errors"] == 0, stats


def test_mtls_upstreams(serve, https, make_config, pki: Pki, r: Redis) -> None:
    urls = {"primary": https("primary", require_client=True),
            "candidate": https("candidate", require_client=True)}
    ca = pki.path("ca.pem")
    assert through_gateway(serve, make_config(**urls, tls_ca_file=ca), r)[0] == 502
    cfg = make_config(**urls, tls_ca_file=ca, tls_cert_file=pki.path("client.pem"),
                      tls_key_file=pki.path("client.key"))
    status, stats = through_gateway(serve, cfg, r)
    assert status == 200 and stats["pairs"] == 1 and stats["errors"] == 0, stats


def test_replay_over_https(https, pki: Pki, redis_url: str, r: Redis, tmp_path: Path) -> None:
    lines = tmp_path / "requests.jsonl"
    lines.write_text("".join(json.dumps({"method": "GET", "path": f"/api/x/{i}"}) + "\n"
                             for i in range(3)))
    assert cli.main(["replay", str(lines), "--primary", https("primary"), "--candidate",
                     https("candidate"), "--redis-url", redis_url,
                     "--tls-ca-file", pki.path("ca.pem")]) == 0
    stats = store.endpoint_stats(r)["GET /api/x/{id}"]
    assert stats["pairs"] == 3 and stats["errors"] == 0, stats


def test_gateway_and_report_server_listen_with_tls(https, pki: Pki, redis_url: str) -> None:
    gw_port, report_port = free_port(), free_port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "diffsvc", "gateway",
                          "--listen", f"127.0.0.1:{gw_port}", "--primary", https("primary"),
                          "--candidate", https("candidate"), "--redis-url", redis_url,
                          "--tls-ca-file", pki.path("ca.pem"),
                          "--tls-listen-cert-file", pki.path("server.pem"),
                          "--tls-listen-key-file", pki.path("server.key")], env=_env()),
        subprocess.Popen([sys.executable, "-m", "diffsvc", "serve",
                          "--listen", f"127.0.0.1:{report_port}", "--redis-url", redis_url,
                          "--report-tls-cert-file", pki.path("server.pem"),
                          "--report-tls-key-file", pki.path("server.key")], env=_env())]
    try:
        for port, proc in zip((gw_port, report_port), procs, strict=True):
            wait_listening(f"127.0.0.1:{port}", proc)  # type: ignore[arg-type]
        status, body = get(f"https://127.0.0.1:{gw_port}/api/x", pki.client_context())
        assert status == 200 and json.loads(body)["role"] == "same"
        assert get(f"https://127.0.0.1:{report_port}/api/v1/summary", pki.client_context())[0] == 200
        with pytest.raises(urllib.error.URLError):  # the system CAs do not know ours
            get(f"https://127.0.0.1:{gw_port}/api/x")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)


def test_bad_tls_files_fail_at_start_naming_the_key(pki: Pki, tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")
    with pytest.raises(ConfigError) as exc:
        config.load(env={}, overrides={"tls.ca_file": str(not_pem)})
    assert exc.value.key == "tls.ca_file"
    with pytest.raises(ConfigError) as exc:
        config.load(env={}, overrides={"tls.cert_file": str(tmp_path / "missing.pem")})
    assert exc.value.key == "tls.cert_file"
    with pytest.raises(ConfigError) as exc:  # the key of another certificate
        config.load(env={}, overrides={"tls.listen_cert_file": pki.path("server.pem"),
                                       "tls.listen_key_file": pki.path("client.key")})
    assert exc.value.key == "tls.listen_cert_file"
