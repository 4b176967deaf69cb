"""Property tests: normalisation, rules, comparison and redaction never raise on any input,
and the verdict of (a, b) is the verdict of (b, a)."""

from __future__ import annotations

import contextlib
import gzip
import zlib
from typing import Any

import brotli
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffsvc.core import bodies as normalize
from diffsvc.core import jsonpath
from diffsvc.core.compare import compare
from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.core.redact import Redactor
from diffsvc.core.rules import RuleSet
from diffsvc.errors import ConfigError, DecodeError

CAP = 64 * 1024
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)

CONTENT_TYPES = ["application/json", "application/problem+json", "text/plain",
                 "text/plain; charset=latin-1", "text/html; charset=bogus", "",
                 "application/x-www-form-urlencoded", "application/octet-stream", "image/png"]
ENCODERS: dict[str | None, Any] = {None: lambda b: b, "gzip": gzip.compress,
                                   "deflate": zlib.compress, "br": brotli.compress,
                                   "bogus": lambda b: b, "gzip, identity": gzip.compress}


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["json", "bytes", "text", "form", "almost-json"]))
    if kind == "json":
        return orjson.dumps(draw(json_values))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if kind == "form":
        return draw(st.text(alphabet="ab=&%+;x\u00e9", max_size=40)).encode()
    if kind == "almost-json":
        return orjson.dumps(draw(json_values))[:-1] or b"{"
    return draw(st.binary(max_size=300))


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    if draw(st.integers(0, 15)) == 0:
        return Reply(error=draw(st.text(max_size=30)))
    body = draw(bodies())
    headers = [("Content-Type", draw(st.sampled_from(CONTENT_TYPES)))]
    encoding = draw(st.sampled_from(list(ENCODERS)))
    if encoding:
        headers.append(("Content-Encoding", encoding))
        body = ENCODERS[encoding](body) if draw(st.booleans()) else body  # sometimes invalid
    headers += draw(st.lists(st.tuples(st.sampled_from(["X-A", "Set-Cookie", "ETag", "Date"]),
                                       st.text(max_size=20)), max_size=3))
    return Reply(draw(st.sampled_from([200, 200, 201, 404, 500])), headers, body)


@st.composite
def exchanges(draw: st.DrawFn) -> Exchange:
    path = "/" + "/".join(draw(st.lists(st.text(alphabet="abc019-_.~%", min_size=1, max_size=10),
                                        max_size=4)))
    request = Request(draw(st.sampled_from(["GET", "POST", "DELETE"])), path,
                      draw(st.text(max_size=20)), [("Authorization", draw(st.text(max_size=20)))],
                      draw(bodies()))
    a = draw(replies())
    b = draw(replies()) if draw(st.booleans()) else Reply(a.status, list(a.headers), a.body)
    return Exchange(request, a, b)


RULES = RuleSet.build({"fields": ["$.id", "$..updated_at", "$.items[*].price"],
                       "headers": ["etag"]}, [])


def swapped(ex: Exchange) -> Exchange:
    return Exchange(ex.request, ex.candidate, ex.primary, id=ex.id)


@FAST
@given(replies())
def test_normalisation_raises_only_decode_errors(reply: Reply) -> None:
    try:
        body = normalize.parse(reply, CAP)
    except DecodeError:
        return
    normalize.canonical(body.value)


@FAST
@given(exchanges())
def test_comparison_never_raises_and_is_symmetric(ex: Exchange) -> None:
    forward = compare(ex, RULES, CAP)
    backward = compare(swapped(ex), RULES, CAP)
    assert forward.verdict == backward.verdict
    assert (forward.verdict == "match") == (not forward.diffs and forward.error is None)
    forward.to_bytes()


@FAST
@given(exchanges())
def test_a_pair_compared_with_itself_matches(ex: Exchange) -> None:
    same = Exchange(ex.request, ex.primary, Reply(ex.primary.status, list(ex.primary.headers),
                                                  ex.primary.body, error=ex.primary.error))
    assert compare(same, RULES, CAP).verdict in ("match", "error")


@FAST
@given(st.lists(st.text(alphabet="$.[]*'\"ab01_-", max_size=15), max_size=4),
       st.text(max_size=30), st.text(max_size=60), json_values)
def test_rules_never_raise_unexpectedly(paths: list[str], method: str, path: str,
                                        tree: Any) -> None:
    try:
        rules = RuleSet.build({"fields": paths, "headers": []}, [])
    except ConfigError:
        return
    rules.endpoint(method, path)
    for rule in rules.for_endpoint(rules.endpoint("GET", "/")).fields:
        rule.remove_from(tree)
    for text in paths:
        with contextlib.suppress(ConfigError):
            jsonpath.parse(text).matches(("a", 0))


@FAST
@given(exchanges())
def test_redaction_never_raises_and_keeps_the_verdict(ex: Exchange) -> None:
    before = compare(ex, RULES, CAP).verdict
    redacted = Redactor(fields=["$.id", "$..token"], key="k")(ex)
    redacted.to_bytes()
    after = compare(redacted, RULES, CAP).verdict
    if before == "match":
        assert after == "match"


@FAST
@given(exchanges(), st.booleans())
def test_an_exchange_round_trips_through_its_stored_bytes(ex: Exchange, secondary: bool) -> None:
    if secondary:
        ex.secondary = Reply(503, [("Retry-After", "1")], b"\x00busy\r\n", 2.5, "boom")
    again = Exchange.from_bytes(ex.to_bytes())
    assert again == ex


path_texts = st.lists(st.sampled_from(
    ["$.a", "$.b", "$[0]", "$[1]", "$[-1]", "$[*]", "$.*", "$.a.b", "$.a[*].b", "$[*].a",
     "$..a", "$.a..b", "$..[*]", "$[0].a[1]", "$.*.*", "$['a']"]), min_size=1, max_size=4)
trees = st.recursive(
    st.none() | st.integers(-3, 3) | st.text(alphabet="ab", max_size=2),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3),
    max_leaves=20)


@FAST
@given(trees, path_texts)
def test_a_compiled_remover_removes_what_remove_from_removes(tree: Any, texts: list[str]) -> None:
    """The per-endpoint plan (`JsonPath.remover`, applied in order by EffectiveRules) leaves
    exactly the tree the step-by-step walk leaves, whatever the tree and the paths."""
    walked, compiled = orjson.loads(orjson.dumps(tree)), orjson.loads(orjson.dumps(tree))
    for text in texts:
        path = jsonpath.parse(text)
        path.remove_from(walked)
        path.remover()(compiled)
    assert orjson.dumps(compiled) == orjson.dumps(walked)
