"""XML and HTML bodies in a comparable form, with the standard library only. Pure.

XML becomes a tree of dicts and lists, so that JSONPath rules and paths work on it:
an element is `{"@attr": value, "#text": text, "child": [element, ...]}`, or just its text
when it has neither attributes nor children; the document is `{root_tag: element}`. HTML,
rarely well-formed, becomes normalised text: one line per tag (attributes sorted) or text
run (whitespace collapsed), comments dropped, so formatting changes do not count."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

from diffsvc.errors import MarkupError

_SPACE = re.compile(r"\s+")


def _element(node: ET.Element) -> Any:
    out: dict[str, Any] = {f"@{k}": v for k, v in sorted(node.attrib.items())}
    text = _SPACE.sub(" ", "".join(t for t in (node.text, *(c.tail for c in node)) if t)).strip()
    for child in node:
        out.setdefault(child.tag, []).append(_element(child))
    if not out:
        return text
    if text:
        out["#text"] = text
    return out


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """An XML document as a tree; MarkupError when it is not well-formed."""
    try:
        parser = ET.XMLParser()
        parser.feed(data)
        root = parser.close()
    except (ET.ParseError, ValueError) as exc:
        raise MarkupError(f"not well-formed XML: {exc}") from None
    return {root.tag: _element(root)}


class _Normaliser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        shown = "".join(f' {k}="{v}"' if v is not None else f" {k}" for k, v in sorted(attrs))
        self.lines.append(f"<{tag}{shown}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.lines.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        text = _SPACE.sub(" ", data).strip()
        if text:
            self.lines.append(text)

    def handle_decl(self, decl: str) -> None:
        self.lines.append(f"<!{_SPACE.sub(' ', decl).strip()}>")


def normalise_html(text: str) -> list[str]:
    """HTML as normalised lines (tags with sorted attributes, collapsed text)."""
    parser = _Normaliser()
    parser.feed(text)
    parser.close()
    return parser.lines
