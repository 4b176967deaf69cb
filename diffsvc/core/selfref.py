"""Upstream self-references: each upstream writes its own origin into its answers (absolute
links built from the Host it was sent: pagination `next_url`, `Location`, `Link`, links in
HTML), so two instances never agree on them. Before comparing, an upstream's own origin
becomes a placeholder, in its header values and its decoded body. Pure: no sockets.

The forms replaced, for an upstream configured as `http://10.0.0.5:8001`:
`http://10.0.0.5:8001` and `10.0.0.5:8001` (and, when the port is the scheme's default,
`http://10.0.0.5` too); a form followed by more of a host name or port is left alone
(`10.0.0.5:80` in `10.0.0.5:8001`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from diffsvc.core.models import Headers

PLACEHOLDER = "{origin}"
_PLACEHOLDER_BYTES = PLACEHOLDER.encode()
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_HOSTS = 256  # client Hosts whose origins are kept compiled, per worker


def _forms(url: str) -> tuple[str, list[str]]:
    """The text every form contains (the cheap test before the regex) and the forms."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    default = _DEFAULT_PORTS.get(parts.scheme)
    if parts.port is None or parts.port == default:
        port = f":{default}" if default else ""
        bare = netloc.removesuffix(port)
        return bare, [f"{parts.scheme}://{bare}{port}", f"{parts.scheme}://{bare}",
                      f"{bare}{port}"]
    return netloc, [f"{parts.scheme}://{netloc}", netloc]


@dataclass(frozen=True, slots=True)
class SelfReference:
    """One upstream's origins (its URL, and the Host its answer may have been built from),
    found in text by needles (host:port, or the host when the port is the default) and
    replaced by one regex."""

    needles: tuple[str, ...]
    needles_bytes: tuple[bytes, ...]
    text: re.Pattern[str]
    data: re.Pattern[bytes]

    @classmethod
    def of(cls, *urls: str) -> SelfReference:
        needles: list[str] = []
        forms: set[str] = set()
        for url in urls:
            needle, more = _forms(url)
            needles.append(needle)
            forms.update(more)
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        pattern = f"(?:{alternatives})(?![\\w.-]|:\\d)"
        unique = tuple(dict.fromkeys(needles))
        return cls(unique, tuple(n.encode() for n in unique), re.compile(pattern),
                   re.compile(pattern.encode()))

    def in_text(self, value: str) -> str:
        for needle in self.needles:
            if needle in value:
                return self.text.sub(PLACEHOLDER, value)
        return value

    def in_data(self, data: bytes) -> bytes:
        for needle in self.needles_bytes:
            if needle in data:
                return self.data.sub(_PLACEHOLDER_BYTES, data)
        return data


@dataclass(frozen=True, slots=True)
class Origins:
    """The self-references of each upstream of an exchange (None: that URL is not known)."""

    primary: SelfReference | None = None
    candidate: SelfReference | None = None
    secondary: SelfReference | None = None
    urls: tuple[str | None, str | None, str | None] = (None, None, None)
    by_host: dict[str, Origins] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, primary: str | None, candidate: str | None, secondary: str | None = None,
           host: str | None = None) -> Origins:
        """`host`: the Host the client sent. A proxy that feeds the collector forwards it to
        primary (and `forward_host` to every upstream), so an answer's links may carry it."""
        extra = (f"http://{host}", f"https://{host}") if host else ()

        def ref(url: str | None) -> SelfReference | None:
            urls = (url, *extra) if url else extra  # a collector's workers may know no primary
            return SelfReference.of(*urls) if urls else None

        return cls(ref(primary), ref(candidate), ref(secondary), (primary, candidate, secondary))

    def for_request(self, headers: Headers) -> Origins:
        """These origins, each side also standing for the client's Host (cached)."""
        host = None
        for name, value in headers:  # a plain loop: this runs for every exchange compared
            if len(name) == 4 and name.lower() == "host":
                host = value
                break
        if not host:
            return self
        found = self.by_host.get(host)
        if found is None:
            try:
                found = Origins.of(*self.urls, host=host)
            except ValueError:  # not a host[:port] (a bad port): no origin to replace
                found = self
            if len(self.by_host) < MAX_HOSTS:
                self.by_host[host] = found
        return found
