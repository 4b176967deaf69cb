"""Bodies, from bytes on the wire to a comparable form. Pure: no sockets, no Redis.

decode (from `codecs`): every Content-Encoding undone, under a cap. parse: JSON as a tree, form bodies as
key/values, text (CSS, JS, plain) as lines, anything else as (size, sha256). A body that
claims JSON and does not parse is compared as text and labelled `json-invalid` (XML:
`xml-invalid`); XML and HTML are parsed into trees of elements (see `markup`)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from diffsvc.core import markup
from diffsvc.core.codecs import decode
from diffsvc.core.models import Reply


@dataclass(slots=True)
class Body:
    kind: str  # json | form | xml | html | text | bytes | empty | json-invalid | xml-invalid
    value: Any
    note: str = ""


# kinds compared as lists of lines; any two of them can be compared with each other
TEXT_KINDS = frozenset({"text", "json-invalid", "xml-invalid"})
TREE_KINDS = frozenset({"json", "form", "xml", "html"})


def media_type(reply: Reply) -> tuple[str, str | None]:
    return parse_media_type(reply.header("content-type") or "")


@functools.lru_cache(maxsize=256)
def parse_media_type(content_type: str) -> tuple[str, str | None]:
    """(mime type lower-cased, charset or None) of a Content-Type value; a few distinct
    values repeat across every reply, so the parse is cached."""
    mime, *params = (p.strip() for p in content_type.split(";"))
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return mime.lower(), charset


def _claims_json(mime: str) -> bool:
    return mime in ("application/json", "text/json") or mime.endswith("+json")


def _claims_html(mime: str) -> bool:
    return mime in ("text/html", "application/xhtml+xml")


def _claims_xml(mime: str) -> bool:
    return mime in ("application/xml", "text/xml") or (mime.endswith("+xml")
                                                       and not _claims_html(mime))


def _text(data: bytes, charset: str | None) -> str | None:
    for codec in (charset, "utf-8"):
        if codec:
            try:
                return data.decode(codec)
            except (UnicodeDecodeError, LookupError):
                continue
    return None


def _is_text_mime(mime: str) -> bool:
    return (mime.startswith("text/") or mime.endswith(("+xml", "/xml", "/javascript"))
            or mime in ("application/x-www-form-urlencoded", ""))


def parse(reply: Reply, cap: int) -> Body:
    """Decode and parse a reply's body into the form it is compared in."""
    mime, charset = media_type(reply)
    return parse_data(decode(reply, cap), mime, charset)


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def parse_data(data: bytes, mime: str, charset: str | None) -> Body:
    """Parse decoded body bytes of a media type (and charset) into their comparable form."""
    if not data:
        return Body("empty", None)
    note = ""
    if _claims_json(mime) or (not mime and data[:1] in (b"{", b"[")):
        try:
            raw = data if charset in (None, "utf-8", "UTF-8") else _text(data, charset) or data
            return Body("json", orjson.loads(raw))
        except (orjson.JSONDecodeError, UnicodeDecodeError, LookupError) as exc:
            if _claims_json(mime):
                note = f"claims JSON but does not parse ({_first_line(exc)}); compared as text"
    if mime == "application/x-www-form-urlencoded":
        form = _text(data, charset)
        if form is not None:
            return Body("form", parse_qs(form, keep_blank_values=True))
    kind = "json-invalid" if note else "text"
    if _claims_xml(mime):
        try:
            decoded = _text(data, charset) if charset else None
            return Body("xml", markup.parse_xml(data if decoded is None else decoded))
        except markup.MarkupError as exc:
            kind, note = "xml-invalid", f"claims XML but does not parse ({exc}); compared as text"
    if _claims_html(mime):
        html = _text(data, charset)
        if html is not None:
            return Body("html", markup.parse_html(html))
    if _is_text_mime(mime) or note:
        text = _text(data, charset)
        if text is not None:
            return Body(kind, text.splitlines(), note)
    return Body("bytes", {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
                note or "binary body: compared by size and hash")


def same_tree(a: Any, b: Any) -> bool:
    """canonical(a) == canonical(b), the cheap way first: two trees serialised to the same
    bytes in their own key order are equal, and two answers of one API usually keep their
    keys in one order (half the cost of sorting both)."""
    try:
        if orjson.dumps(a) == orjson.dumps(b):
            return True
    except TypeError:  # a key that is not a string: only the canonical form takes it
        pass
    return canonical(a) == canonical(b)


def canonical(value: Any) -> bytes:
    """Bytes that are equal exactly when two parsed bodies are equal (keys sorted)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
