"""The one path syntax: parse, match, remove_from, render (with and without folding)."""

from __future__ import annotations

import copy

import pytest

from diffsvc.core import jsonpath
from diffsvc.core.jsonpath import ANY, Step, parse, render
from diffsvc.errors import ConfigError, RuleError

DOC = {
    "request_id": "r-1",
    "generated_at": "2024-01-01T00:00:00Z",
    "a b": 1,
    "items": [
        {"id": 1, "updated_at": "t1", "meta": {"generated_at": "t"}},
        {"id": 2, "updated_at": "t2"},
    ],
    "nested": {"deep": {"generated_at": "t", "keep": True}},
}


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("$", ()),
        ("$.request_id", (Step("request_id"),)),
        ("$..generated_at", (Step("generated_at", recursive=True),)),
        ("$.items[*].updated_at", (Step("items"), Step(ANY), Step("updated_at"))),
        ("$['a b']", (Step("a b"),)),
        ('$["a b"].c', (Step("a b"), Step("c"))),
        ("$.items[0]", (Step("items"), Step(0))),
        ("$.items[-1]", (Step("items"), Step(-1))),
        ("$.*", (Step(ANY),)),
        ("$..[*]", (Step(ANY, recursive=True),)),
        ("$.x-y.$ref", (Step("x-y"), Step("$ref"))),
    ],
)
def test_good_paths_parse(text: str, steps: tuple[Step, ...]) -> None:
    path = parse(text)
    assert path.text == text
    assert path.steps == steps


@pytest.mark.parametrize(
    "text",
    ["request_id", "", "$.", "$.items[", "$.items[foo]", "$[']", "$ .a", "$.a..", "$.a.[0]",
     "$.a/b"],
)
def test_malformed_paths_raise_rule_error_naming_the_rule(text: str) -> None:
    with pytest.raises(RuleError) as info:
        parse(text, rule="ignore.fields[3]")
    assert info.value.key == "ignore.fields[3]"
    assert "ignore.fields[3]" in str(info.value)
    assert isinstance(info.value, ConfigError)  # callers catch one error type for config


def test_non_string_path_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match="starting with"):
        parse(42, rule="r")  # type: ignore[arg-type]


def test_matches_exact_and_recursive() -> None:
    assert parse("$.items[*].updated_at").matches(("items", 3, "updated_at"))
    assert not parse("$.items[*].updated_at").matches(("items", 3))
    rec = parse("$..generated_at")
    assert rec.matches(("generated_at",))
    assert rec.matches(("nested", "deep", "generated_at"))
    assert rec.matches(("items", 0, "meta", "generated_at"))
    assert not rec.matches(("nested", "generated_at", "x"))
    assert parse("$.nested").matches_prefix_of(("nested", "deep", "keep"))
    assert not parse("$.nested").matches(("nested", "deep", "keep"))


def test_remove_from_top_level_and_bracket_names() -> None:
    doc = copy.deepcopy(DOC)
    parse("$.request_id").remove_from(doc)
    parse("$['a b']").remove_from(doc)
    assert "request_id" not in doc and "a b" not in doc
    assert doc["generated_at"] == DOC["generated_at"]


def test_remove_from_recursive_reaches_every_depth() -> None:
    doc = copy.deepcopy(DOC)
    parse("$..generated_at").remove_from(doc)
    assert "generated_at" not in doc
    assert doc["nested"]["deep"] == {"keep": True}
    assert doc["items"][0]["meta"] == {}
    assert doc["items"][0]["updated_at"] == "t1"


def test_remove_from_wildcard_in_arrays() -> None:
    doc = copy.deepcopy(DOC)
    parse("$.items[*].updated_at").remove_from(doc)
    assert [sorted(i) for i in doc["items"]] == [["id", "meta"], ["id"]]


def test_remove_from_array_elements_keeps_order_of_the_rest() -> None:
    doc = {"xs": [10, 20, 30]}
    parse("$.xs[1]").remove_from(doc)
    assert doc == {"xs": [10, 30]}
    parse("$.xs[*]").remove_from(doc)
    assert doc == {"xs": []}


def test_remove_from_wildcard_names_in_objects() -> None:
    doc = {"a": {"x": 1, "y": 2}, "b": {"x": 3}, "c": 4, "d": [{"x": 5}]}
    parse("$.*.x").remove_from(doc)
    assert doc == {"a": {"y": 2}, "b": {}, "c": 4, "d": [{"x": 5}]}  # d[0] is one level deeper
    parse("$.a.*").remove_from(doc)
    assert doc == {"a": {}, "b": {}, "c": 4, "d": [{"x": 5}]}


def test_remove_from_missing_path_is_a_no_op() -> None:
    doc = copy.deepcopy(DOC)
    parse("$.nope.deeper").remove_from(doc)
    parse("$.items[*].nope").remove_from(doc)
    parse("$.request_id.inner").remove_from(doc)  # a string has no children
    assert doc == DOC


def test_render_folds_indices_by_default() -> None:
    assert render(()) == "$"
    assert render(("items", 3, "price")) == "$.items[*].price"
    assert render(("items", 3, "price"), fold=False) == "$.items[3].price"
    assert render(("a b", "c")) == "$['a b'].c"
    assert render(("it's",)) == "$['it\\'s']"
    assert render(("x-y",)) == "$['x-y']"


@pytest.mark.parametrize("concrete", [("items", 0, "price"), ("a b", 2), ("x-y", "z"), ("k",)])
def test_rendered_path_parses_back_and_matches(concrete: tuple[jsonpath.Key, ...]) -> None:
    """What the report shows can be pasted into ignore.fields and removes that field."""
    assert parse(render(concrete)).matches(concrete)
    assert parse(render(concrete, fold=False)).matches(concrete)
