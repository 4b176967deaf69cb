"""TLS from the settings: the client context of every upstream call (primary, candidate,
secondary, replay: tls.ca_file, tls.verify, tls.cert_file/tls.key_file for mTLS) and the
server contexts of the gateway (tls.listen_cert_file/key_file) and the report server
(report.tls_cert_file/key_file). A file that does not load fails at start-up, naming its key."""

from __future__ import annotations

import ssl

from diffsvc.config.settings import Config
from diffsvc.errors import ConfigError


def client_context(cfg: Config) -> ssl.SSLContext:
    """How diffsvc checks upstreams' certificates (and presents its own, for mTLS)."""
    try:
        ctx = ssl.create_default_context(cafile=cfg.tls_ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError("tls.ca_file", f"not a PEM file of CA certificates ({exc})",
                          cfg.tls_ca_file) from None
    if not cfg.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.tls_cert_file:
        _load_chain(ctx, cfg.tls_cert_file, cfg.tls_key_file, "tls.cert_file")
    elif cfg.tls_key_file:
        raise ConfigError("tls.key_file", "needs tls.cert_file (the client certificate)")
    return ctx


def server_context(cert_file: str | None, key_file: str | None,
                   key: str) -> ssl.SSLContext | None:
    """The context to listen with TLS, or None (plain HTTP) when no certificate is set."""
    if not cert_file:
        if key_file:
            raise ConfigError(key.replace("cert_file", "key_file"), f"needs {key}")
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_chain(ctx, cert_file, key_file, key)
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert_file: str, key_file: str | None, key: str) -> None:
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(key, f"certificate and key do not load ({exc}); give PEM files, the "
                               f"key in the certificate file or in the *key_file setting",
                          cert_file) from None


def gateway_context(cfg: Config) -> ssl.SSLContext | None:
    return server_context(cfg.tls_listen_cert_file, cfg.tls_listen_key_file,
                          "tls.listen_cert_file")


def report_context(cfg: Config) -> ssl.SSLContext | None:
    return server_context(cfg.report_tls_cert_file, cfg.report_tls_key_file,
                          "report.tls_cert_file")


def check(cfg: Config) -> None:
    """Load every TLS file now, so a bad one fails at start-up naming its key."""
    client_context(cfg)
    gateway_context(cfg)
    report_context(cfg)
