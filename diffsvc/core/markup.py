"""XML and HTML bodies in a comparable form, with the standard library only. Pure.

XML becomes a tree of dicts and lists, so that JSONPath rules and paths work on it:
an element is `{"@attr": value, "#text": text, "child": [element, ...]}`, or just its text
when it has neither attributes nor children; the document is `{root_tag: element}`. HTML,
rarely well-formed, is parsed as forgivingly as a browser does into the same kind of tree,
children kept as lists under the document (`{"html": [element]}`), so element paths are
JSONPaths that fold like array indices and formatting changes do not count."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

from diffsvc.errors import MarkupError

_SPACE = re.compile(r"\s+")


def _element(node: ET.Element, html: bool = False) -> Any:
    """XML: an element with neither attributes nor children is its text. HTML: always a
    dict, so adding an attribute is an added `@name`, not a changed type; text runs around
    a child (`a<br>b`) are words apart."""
    out: dict[str, Any] = {f"@{k}": v for k, v in sorted(node.attrib.items())}
    sep = " " if html else ""
    text = _SPACE.sub(" ", sep.join(t for t in (node.text, *(c.tail for c in node)) if t)).strip()
    for child in node:
        out.setdefault(child.tag, []).append(_element(child, html))
    if not out and not html:
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


# Elements that never have content, and start tags that close an open sibling (HTML's
# optional end tags): enough of the HTML parsing rules to build the tree real pages mean.
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "param", "source", "track", "wbr"})
_BLOCKS = ("address", "article", "aside", "blockquote", "details", "div", "dl", "fieldset",
           "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
           "main", "menu", "nav", "ol", "pre", "section", "table", "ul")
_CLOSES = {**{tag: {"p"} for tag in _BLOCKS}, "p": {"p"}, "li": {"li"}, "option": {"option"},
           "dt": {"dt", "dd"}, "dd": {"dt", "dd"}, "tr": {"tr", "td", "th"},
           "td": {"td", "th"}, "th": {"td", "th"}}


class _TreeBuilder(HTMLParser):
    """HTML into ElementTree elements, forgiving as browsers are: void elements, optional end
    tags, stray end tags (ignored) and unclosed elements (closed at the end). Comments are
    dropped; character references are decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = ET.Element("#document")
        self.stack = [self.root]

    def _add(self, tag: str, attrs: list[tuple[str, str | None]]) -> ET.Element:
        return ET.SubElement(self.stack[-1], tag, {k: v or "" for k, v in attrs})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        closes = _CLOSES.get(tag)
        while closes and len(self.stack) > 1 and self.stack[-1].tag in closes:
            self.stack.pop()
        element = self._add(tag, attrs)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        parent = self.stack[-1]
        if len(parent):
            last = parent[-1]
            last.tail = (last.tail or "") + data
        else:
            parent.text = (parent.text or "") + data


def parse_html(text: str) -> dict[str, Any]:
    """An HTML document as the same tree as XML: `{"html": [{"head": [...], "body": [...]}]}`;
    an element's attributes are `@name`, its own text (whitespace collapsed) `#text`, and its
    children lists by tag, so `$.html[0].body[0].div[2].p[0]['#text']` is the text of the
    first `p` of the third `div` of the body. The doctype and comments are left out."""
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    tree: dict[str, Any] = _element(builder.root, html=True)
    return tree
