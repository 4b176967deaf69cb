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
_PLACEHOLDER_BYTES = PLACEHOLDER.encode()
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    """One upstream's origin, found in text by a needle (its host:port, or its host when the
    port is the default) and replaced by a regex."""

    needle: str
    needle_bytes: bytes
    text: re.Pattern[str]
    data: re.Pattern[bytes]

    @classmethod
    def of(cls, url: str) -> SelfReference:
        needle, forms = _forms(url)
        alternatives = "|".join(re.escape(f) for f in sorted(set(forms), key=len, reverse=True))
        pattern = f"(?:{alternatives})(?![\\w.-]|:\\d)"
        return cls(needle, needle.encode(), re.compile(pattern), re.compile(pattern.encode()))

    def in_text(self, value: str) -> str:
        return self.text.sub(PLACEHOLDER, value) if self.needle in value else value

    def in_data(self, data: bytes) -> bytes:
        if self.needle_bytes not in data:
            return data
        return self.data.sub(_PLACEHOLDER_BYTES, data)


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
