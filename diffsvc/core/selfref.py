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
from dataclasses import dataclass
from urllib.parse import urlsplit

PLACEHOLDER = "{origin}"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _forms(url: str) -> tuple[str, list[str]]:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    host = parts.hostname or netloc
    default = _DEFAULT_PORTS.get(parts.scheme)
    if parts.port is None or parts.port == default:
        port = f":{default}" if default else ""
        bare = netloc.removesuffix(port)
        forms = [f"{parts.scheme}://{bare}{port}", f"{parts.scheme}://{bare}", f"{bare}{port}"]
    else:
        forms = [f"{parts.scheme}://{netloc}", netloc]
    return host, forms


@dataclass(frozen=True, slots=True)
class SelfReference:
    """One upstream's origin, found in text by a needle (its host) and replaced by a regex."""

    needle: str
    text: re.Pattern[str]
    data: re.Pattern[bytes]

    @classmethod
    def of(cls, url: str) -> SelfReference:
        host, forms = _forms(url)
        alternatives = "|".join(re.escape(f) for f in sorted(set(forms), key=len, reverse=True))
        pattern = f"(?:{alternatives})(?![\\w.-]|:\\d)"
        return cls(host, re.compile(pattern), re.compile(pattern.encode()))

    def in_text(self, value: str) -> str:
        return self.text.sub(PLACEHOLDER, value) if self.needle in value else value

    def in_data(self, data: bytes) -> bytes:
        needle = self.needle.encode()
        return self.data.sub(PLACEHOLDER.encode(), data) if needle in data else data


@dataclass(frozen=True, slots=True)
class Origins:
    """The self-references of each upstream of an exchange (None: that URL is not known)."""

    primary: SelfReference | None = None
    candidate: SelfReference | None = None
    secondary: SelfReference | None = None

    @classmethod
    def of(cls, primary: str | None, candidate: str | None,
           secondary: str | None = None) -> Origins:
        def ref(url: str | None) -> SelfReference | None:
            return SelfReference.of(url) if url else None

        return cls(ref(primary), ref(candidate), ref(secondary))
