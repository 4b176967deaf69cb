"""Compare the replies of one Exchange. Pure: imports neither aiohttp nor redis.

Cheap path first: bodies are parsed, ignored fields removed, and canonical forms compared;
only pairs that still differ are walked. Arrays whose lengths differ are aligned on the
canonical form of their items (difflib, as deepdiff itself does); deepdiff is called only
on a run of changed items whose lengths still differ, where it pairs items by likeness.
HTML and XML are trees too (see `markup`); plain text, CSS and JS are compared line by line
and every differing region is reported at `$.line[n]`."""

from __future__ import annotations

from collections.abc import Callable
from difflib import SequenceMatcher
from typing import Any

from deepdiff import DeepDiff

from diffsvc.core.bodies import (
    TEXT_KINDS,
    TREE_KINDS,
    Body,
    canonical,
    parse_data,
    parse_media_type,
    same_tree,
)
from diffsvc.core.codecs import decode_body
from diffsvc.core.jsonpath import HEADER, Concrete, render
from diffsvc.core.models import Comparison, Exchange, FieldDiff, Reply
from diffsvc.core.rules import EffectiveRules, RuleSet
from diffsvc.core.selfref import Origins, SelfReference
from diffsvc.errors import DecodeError

_NUMBER = (int, float)
_MAX_SHOWN = 200  # characters of a value kept in a FieldDiff


def _shown(value: Any) -> Any:
    if isinstance(value, (dict, list)) or (isinstance(value, str) and len(value) > _MAX_SHOWN):
        text = canonical(value).decode() if not isinstance(value, str) else value
        return text[:_MAX_SHOWN] + ("…" if len(text) > _MAX_SHOWN else "")
    return value


def _diff(path: Concrete, kind: str, a: Any, b: Any) -> FieldDiff:
    return FieldDiff(render(path), kind, _shown(a), _shown(b), render(path, fold=False))


def _same_type(a: Any, b: Any) -> bool:
    if type(a) is type(b):
        return True
    return type(a) in _NUMBER and type(b) in _NUMBER  # 1 and 1.0 are both JSON numbers


def diff_trees(a: Any, b: Any, path: Concrete = (),
               rules: EffectiveRules | None = None) -> list[FieldDiff]:
    """Differences between two parsed JSON trees, as folded JSONPaths (numbers within the
    rules' tolerance count as equal)."""
    out: list[FieldDiff] = []
    _walk(a, b, path, out, rules.tolerates if rules is not None and rules.tolerance else None)
    return out


Tolerates = Callable[[Concrete, float, float], bool] | None


def _walk(a: Any, b: Any, path: Concrete, out: list[FieldDiff], tol: Tolerates) -> None:
    if not _same_type(a, b):
        out.append(_diff(path, "type_changed", a, b))
    elif isinstance(a, dict):
        for key, value in a.items():
            if key not in b:
                out.append(_diff(path + (key,), "removed", value, None))
            elif value != b[key] or not _same_type(value, b[key]):
                _walk(value, b[key], path + (key,), out, tol)
        for key, value in b.items():
            if key not in a:
                out.append(_diff(path + (key,), "added", None, value))
    elif isinstance(a, list):
        if len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                if x != y or not _same_type(x, y):
                    _walk(x, y, path + (i,), out, tol)
        else:
            out.append(_diff(path, "length_changed", len(a), len(b)))
            _align(a, b, path, out, tol)
    elif a != b:
        if tol is not None and type(a) in _NUMBER and tol(path, a, b):
            return
        out.append(_diff(path, "changed", a, b))


_DEEPDIFF_KINDS = {
    "iterable_item_added": "added", "iterable_item_removed": "removed",
    "dictionary_item_added": "added", "dictionary_item_removed": "removed",
    "values_changed": "changed", "type_changes": "type_changed",
}


def _align(a: list[Any], b: list[Any], path: Concrete, out: list[FieldDiff],
           tol: Tolerates) -> None:
    """Arrays of different lengths: equal runs are skipped, inserted and deleted runs are
    added and removed items, a changed run of equal length is walked item by item, and
    deepdiff pairs the items of a changed run whose lengths differ."""
    matcher = SequenceMatcher(None, [canonical(x) for x in a], [canonical(y) for y in b],
                              autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "delete":
            out.extend(_diff(path + (i,), "removed", a[i], None) for i in range(i1, i2))
        elif tag == "insert":
            out.extend(_diff(path + (j,), "added", None, b[j]) for j in range(j1, j2))
        elif tag == "replace" and i2 - i1 == j2 - j1:
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                _walk(a[i], b[j], path + (i,), out, tol)
        elif tag == "replace":
            out.extend(_deepdiff_run(a[i1:i2], b[j1:j2], path, i1, j1))


def _deepdiff_run(a: list[Any], b: list[Any], path: Concrete, a_start: int,
                  b_start: int) -> list[FieldDiff]:
    """A changed run of items, a[a_start:…] against b[b_start:…]: deepdiff pairs them;
    its indices are made absolute again (an added item's index is in b, others in a)."""
    out = []
    tree = DeepDiff(a, b, view="tree", verbose_level=2)
    for report_type, items in tree.items():
        kind = _DEEPDIFF_KINDS.get(report_type)
        if kind is None:
            continue
        for item in items:
            index, *rest = item.path(output_format="list")
            index += b_start if kind == "added" else a_start
            t1 = None if kind == "added" else item.t1
            t2 = None if kind == "removed" else item.t2
            out.append(_diff(path + (index, *rest), kind, t1, t2))
    return out


Named = dict[str, list[str]]  # a reply's headers: lower-cased name -> its values, in order


def _named(reply: Reply) -> Named:
    """One pass over a reply's headers; the compared values and the body's Content-Type
    and Content-Encoding all come from it."""
    out: Named = {}
    for name, value in reply.headers:
        lname = name.lower()
        values = out.get(lname)
        if values is None:
            out[lname] = [value]
        else:
            values.append(value)
    return out


def _header_values(named: Named, rules: EffectiveRules) -> dict[str, str]:
    ignored, only = rules.headers, rules.only_headers
    return {k: ", ".join(v) for k, v in named.items()
            if k not in ignored and (only is None or k in only)}


Refs = tuple[SelfReference | None, SelfReference | None]


def _own(ref: SelfReference | None, value: str | None) -> str | None:
    return value if ref is None or value is None else ref.in_text(value)


def compare_headers(a: Reply, b: Reply, rules: EffectiveRules,
                    refs: Refs = (None, None)) -> list[FieldDiff]:
    """Differing header values; only those are searched for self-references."""
    return _compare_named(_named(a), _named(b), rules, refs)


def _compare_named(a: Named, b: Named, rules: EffectiveRules, refs: Refs) -> list[FieldDiff]:
    ha, hb = _header_values(a, rules), _header_values(b, rules)
    out = []
    for name in sorted(ha.keys() | hb.keys()):
        va, vb = ha.get(name), hb.get(name)
        if va != vb:
            va, vb = _own(refs[0], va), _own(refs[1], vb)
        if va != vb:
            kind = "added" if va is None else "removed" if vb is None else "changed"
            out.append(FieldDiff(HEADER + name, kind, va, vb, HEADER + name))
    return out


LINE = "line"  # a text body's lines: $.line[n], n counted from 1 as an editor shows them
MAX_REGIONS = 100  # differing regions of a text body reported, at most


def _line(n: int, end: int | None = None) -> str:
    return f"$.{LINE}[{n}]" if end is None or end <= n + 1 else f"$.{LINE}[{n}:{end}]"


def diff_lines(a: list[str], b: list[str]) -> list[FieldDiff]:
    """Every differing region of two texts: a changed line is `$.line[n]` (n in primary), a
    run of lines removed, added or replaced by a run of another length is one region at
    its first line; the location gives the run (`$.line[12:15]`, primary's lines 12-14)."""
    out: list[FieldDiff] = []
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            out.extend(FieldDiff(_line(i + 1), "changed", _shown(a[i]), _shown(b[j]),
                                 _line(i + 1)) for i, j in zip(range(i1, i2), range(j1, j2),
                                                               strict=True))
        else:
            kind = {"delete": "removed", "insert": "added"}.get(tag, "changed")
            before = "\n".join(a[i1:i2]) if i2 > i1 else None
            after = "\n".join(b[j1:j2]) if j2 > j1 else None
            out.append(FieldDiff(_line(i1 + 1), kind, _shown(before), _shown(after),
                                 _line(i1 + 1, i2 + 1)))
        if len(out) >= MAX_REGIONS:
            return out[:MAX_REGIONS]
    return out


def _prepare(body: Body, rules: EffectiveRules) -> Body:
    if body.kind in TREE_KINDS and rules.reshapes:
        body.value = rules.prepare(body.value)
    elif body.kind in TEXT_KINDS and rules.fields:
        lines = [f for f in rules.fields if f.steps and f.steps[0].accepts(LINE)]
        if lines:  # an ignored line is blanked on both sides, so the others keep their place
            body.value = ["" if any(f.matches((LINE, n)) for f in lines) else text
                          for n, text in enumerate(body.value, start=1)]
    return body


def _label(body: Body) -> str:
    return f"{body.kind} ({body.note})" if body.note and body.kind != "bytes" else body.kind


def compare_bodies(a: Body, b: Body, rules: EffectiveRules | None = None) -> list[FieldDiff]:
    """Differences of two parsed (and prepared) bodies."""
    if a.kind != b.kind and not {a.kind, b.kind} <= TEXT_KINDS:
        return [FieldDiff("body", "type_changed", _label(a), _label(b), "body")]
    if a.kind in TREE_KINDS:
        if same_tree(a.value, b.value):
            return []
        return diff_trees(a.value, b.value, rules=rules)
    if a.value == b.value:
        return []
    if a.kind in TEXT_KINDS:
        return diff_lines(a.value, b.value)
    return [FieldDiff("body", "changed", a.value, b.value, "body")]


def _first(named: Named, name: str) -> str | None:
    values = named.get(name)
    return values[0] if values else None


def _media_type(named: Named) -> tuple[str, str | None]:
    return parse_media_type(_first(named, "content-type") or "")


def compare_replies(a: Reply, b: Reply, rules: EffectiveRules, max_body: int,
                    refs: Refs = (None, None)) -> tuple[list[FieldDiff], str]:
    """Differences between two replies (status, headers, body) and the body kind seen;
    `refs` are the two upstreams' own origins, replaced by a placeholder first.

    Cheap path: when both decoded bodies are the same bytes of the same media type, only
    one is parsed (for its kind) and no rule runs."""
    diffs: list[FieldDiff] = []
    if a.status != b.status:
        diffs.append(FieldDiff("status", "changed", a.status, b.status, "status"))
    named_a, named_b = _named(a), _named(b)
    diffs.extend(_compare_named(named_a, named_b, rules, refs))
    (mime_a, cs_a), (mime_b, cs_b) = _media_type(named_a), _media_type(named_b)
    data_a = decode_body(a.body, _first(named_a, "content-encoding"), max_body)
    data_b = decode_body(b.body, _first(named_b, "content-encoding"), max_body)
    if data_a != data_b:  # equal bytes stay equal: self-references are sought only in others
        if refs[0] is not None:
            data_a = refs[0].in_data(data_a)
        if refs[1] is not None:
            data_b = refs[1].in_data(data_b)
    body_a = parse_data(data_a, mime_a, cs_a)
    if data_a == data_b and (mime_a, cs_a) == (mime_b, cs_b):
        return diffs, body_a.kind
    body_b = parse_data(data_b, mime_b, cs_b)
    diffs.extend(compare_bodies(_prepare(body_a, rules), _prepare(body_b, rules), rules))
    kind = body_a.kind if body_a.kind == body_b.kind else f"{body_a.kind}/{body_b.kind}"
    return diffs, kind


def compare(exchange: Exchange, ruleset: RuleSet, max_body: int,
            origins: Origins | None = None) -> Comparison:
    """The verdict of an exchange: match, mismatch (with the differing paths) or error;
    `origins`: the upstreams' own origins, not differences (see `selfref`)."""
    req = exchange.request
    endpoint = ruleset.endpoint(req.method, req.path, req.query)
    result = Comparison(exchange.id, endpoint, "match", rules_digest=ruleset.digest)
    origins = origins.for_request(req.headers) if origins else None
    for side, reply in (("primary", exchange.primary), ("candidate", exchange.candidate)):
        if reply.error:
            result.verdict, result.error = "error", f"{side}: {reply.error}"
            return result
    try:
        diffs, result.body_kind = compare_replies(
            exchange.primary, exchange.candidate, ruleset.for_endpoint(endpoint), max_body,
            (origins.primary, origins.candidate) if origins else (None, None))
    except DecodeError as exc:
        result.verdict, result.error = "error", f"body could not be decoded: {exc}"
        return result
    if diffs:
        result.verdict, result.diffs = "mismatch", diffs
    return result


def compare_secondary(exchange: Exchange, ruleset: RuleSet, max_body: int,
                      origins: Origins | None = None) -> list[FieldDiff] | None:
    """Noise: the differences between primary and secondary (two instances of the production
    build), under the same rules; None when there is no usable secondary reply."""
    second = exchange.secondary
    if second is None or second.error or exchange.primary.error:
        return None
    req = exchange.request
    endpoint = ruleset.endpoint(req.method, req.path, req.query)
    origins = origins.for_request(req.headers) if origins else None
    try:
        diffs, _ = compare_replies(exchange.primary, second, ruleset.for_endpoint(endpoint),
                                   max_body,
                                   (origins.primary, origins.secondary) if origins else (None, None))
    except DecodeError:
        return None
    return diffs
