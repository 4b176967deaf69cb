"""Rules beyond ignored fields: ignore_order, numeric tolerance, `only`, header lists, errors
that name the rule, digests, and compilation once per endpoint."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml

from diffsvc import config
from diffsvc.core.compare import compare
from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.core.rules import VOLATILE_HEADERS, RuleSet
from diffsvc.errors import ConfigError, RuleError

MB = 1 << 20


def rs(**spec: Any) -> RuleSet:
    return RuleSet.build(config.parse_ignore("ignore", spec.get("ignore")),
                         config.parse_routes("routes", spec.get("routes")),
                         ignore_order=spec.get("ignore_order"), tolerance=spec.get("tolerance"),
                         only=spec.get("only"))


def jr(doc: Any, headers: list[tuple[str, str]] | None = None, status: int = 200) -> Reply:
    return Reply(status, [("Content-Type", "application/json"), *(headers or [])],
                 orjson.dumps(doc))


def paths(ruleset: RuleSet, a: Reply, b: Reply, path: str = "/x") -> list[str]:
    return compare(Exchange(Request("GET", path), a, b), ruleset, MB).paths


def test_ignore_order_sorts_only_the_named_arrays() -> None:
    rules = rs(ignore_order=["$.set"])
    assert paths(rules, jr({"set": [1, 2, 3], "list": [1, 2]}),
                 jr({"set": [3, 1, 2], "list": [1, 2]})) == []
    assert paths(rules, jr({"set": [1, 2], "list": [1, 2]}),
                 jr({"set": [2, 1], "list": [2, 1]})) == ["$.list[*]"]


def test_ignore_order_everywhere_and_nested() -> None:
    rules = rs(ignore_order=["$..*"])
    a = {"groups": [{"ids": [3, 1]}, {"ids": [2]}]}
    b = {"groups": [{"ids": [2]}, {"ids": [1, 3]}]}
    assert paths(rules, jr(a), jr(b)) == []
    assert paths(rs(), jr(a), jr(b)) != []


def test_ignore_order_still_sees_a_changed_member() -> None:
    assert paths(rs(ignore_order=["$.s"]), jr({"s": ["a", "b"]}),
                 jr({"s": ["b", "c"]})) == ["$.s[*]"]


def test_tolerance_absolute_relative_and_per_path() -> None:
    everywhere = rs(tolerance={"abs": 0.01})
    assert paths(everywhere, jr({"a": 1.0, "b": {"c": 2.0}}),
                 jr({"a": 1.005, "b": {"c": 2.009}})) == []
    assert paths(everywhere, jr({"a": 1.0}), jr({"a": 1.02})) == ["$.a"]
    relative = rs(tolerance=[{"path": "$.items[*].price", "rel": 0.01}])
    assert paths(relative, jr({"items": [{"price": 100, "qty": 100}]}),
                 jr({"items": [{"price": 100.9, "qty": 101}]})) == ["$.items[*].qty"]


def test_tolerance_never_hides_a_type_change() -> None:
    assert paths(rs(tolerance={"abs": 10}), jr({"a": 1}), jr({"a": "1"})) == ["$.a"]


def test_only_compares_selected_paths_and_headers() -> None:
    rules = rs(only=["$.user.id", "header.x-version"])
    a = jr({"user": {"id": 1, "seen": 1}, "x": 1}, [("X-Version", "1"), ("X-Other", "a")])
    b = jr({"user": {"id": 1, "seen": 2}, "x": 2}, [("X-Version", "1"), ("X-Other", "b")])
    assert paths(rules, a, b) == []
    c = jr({"user": {"id": 2}}, [("X-Version", "2")])
    assert paths(rules, a, c) == ["$.user.id", "header.x-version"]
    assert paths(rules, a, jr({"user": {"id": 1}}, [("X-Version", "1")], status=500)) == ["status"]


def test_route_rules_apply_to_their_route_only() -> None:
    rules = rs(routes=[{"match": "GET /users/{id}", "ignore": {"fields": ["$.t"]},
                        "ignore_order": ["$.r"], "tolerance": {"abs": 1}, "only": []}])
    a, b = jr({"t": 1, "r": [1, 2], "n": 1.0}), jr({"t": 2, "r": [2, 1], "n": 1.5})
    assert paths(rules, a, b, "/users/7") == []
    assert paths(rules, a, b, "/orders/7") == ["$.n", "$.r[*]", "$.t"]


def test_header_ignores_are_case_insensitive_on_top_of_the_builtin_list() -> None:
    rules = rs(ignore={"headers": ["X-Node"]})
    eff = rules.for_endpoint("GET /x")
    assert eff.header_ignored("x-NODE") and eff.header_ignored("Date")
    assert eff.headers >= VOLATILE_HEADERS
    assert not eff.header_ignored("cache-control")


@pytest.mark.parametrize(("spec", "named"), [
    ({"ignore_order": ["$.a["]}, "ignore_order[0] '$.a['"),
    ({"only": ["items"]}, "only[0] 'items'"),
    ({"tolerance": [{"path": "$.x", "abs": -1}]}, "tolerance[0].abs"),
    ({"tolerance": [{"path": "$..[", "rel": 0.1}]}, "tolerance[0].path"),
    ({"routes": [{"match": "GET /a", "ignore_order": ["$.ok", "bad"]}]},
     "routes[0].ignore_order[1] 'bad'"),
])
def test_a_malformed_rule_fails_naming_it(spec: dict[str, Any], named: str) -> None:
    with pytest.raises((RuleError, ConfigError)) as err:
        rs(**spec)
    assert named in str(err.value)


def test_config_rejects_bad_tolerance_keys_naming_them() -> None:
    with pytest.raises(ConfigError, match=r"tolerance\[0\].bogus"):
        config.load(env={}, overrides={"tolerance": [{"path": "$.a", "bogus": 1}]})
    with pytest.raises(ConfigError, match=r"routes\[0\].only\[0\]"):
        config.load(env={}, overrides={"routes": [{"match": "GET /a", "only": ["nope"]}]})


def test_digest_changes_with_every_kind_of_rule_and_is_stable() -> None:
    digests = {rs().digest, rs(ignore_order=["$.a"]).digest, rs(tolerance={"abs": 1}).digest,
               rs(only=["$.a"]).digest, rs(ignore={"fields": ["$.a"]}).digest}
    assert len(digests) == 5
    assert rs(only=["$.a"]).digest == rs(only=["$.a"]).digest
    extra = rs(ignore_order=["$.a"]).with_extra({"*": ["$.b"]})
    assert extra.source["ignore_order"] == ["$.a"] and extra.digest != rs(ignore_order=["$.a"]).digest


def test_effective_rules_are_compiled_once_per_endpoint() -> None:
    rules = rs(ignore_order=["$.a"])
    assert rules.for_endpoint("GET /x") is rules.for_endpoint("GET /x")


def test_rules_leave_equal_bodies_alone_on_the_cheap_path() -> None:
    body = jr({"a": [2, 1]})
    result = compare(Exchange(Request("GET", "/x"), body, body), rs(ignore_order=["$.a"]), MB)
    assert (result.verdict, result.body_kind) == ("match", "json")


def test_rules_added_from_the_ui_may_name_headers() -> None:
    ruleset = RuleSet.build({"fields": [], "headers": []}, [],
                            {"*": ["header.X-Everywhere", "$.a"], "GET /one": ["header.x-one"]})
    one, other = ruleset.for_endpoint("GET /one"), ruleset.for_endpoint("GET /other")
    assert one.header_ignored("X-Everywhere") and other.header_ignored("x-everywhere")
    assert one.header_ignored("X-One") and not other.header_ignored("x-one")
    assert [p.text for p in other.fields] == ["$.a"]


def test_ui_rule_paths_are_checked_and_exported_as_config() -> None:
    from diffsvc.storage import rulestore

    assert rulestore.validate("header.X-Build", "GET /one")[0] == "header.x-build"
    for bad in ("header.", "header.x build", "price"):
        with pytest.raises(RuleError) as info:
            rulestore.validate(bad)
        assert info.value.key == "path"
    rules = [rulestore.Rule("1", "header.x-build", "GET /one"), rulestore.Rule("2", "$.a"),
             rulestore.Rule("3", "header.x-trace")]
    doc = yaml.safe_load(rulestore.to_yaml(rules))
    assert doc == {"ignore": {"fields": ["$.a"], "headers": ["x-trace"]},
                   "routes": [{"match": "GET /one", "ignore": {"headers": ["x-build"]}}]}
    loaded = config.load(overrides=doc)
    ruleset = RuleSet.from_config(loaded)
    assert ruleset.for_endpoint("GET /one").header_ignored("X-Build")
    assert ruleset.for_endpoint("GET /two").header_ignored("x-trace")
