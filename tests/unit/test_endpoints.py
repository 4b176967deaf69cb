"""Endpoint names: METHOD /path with id-like segments folded, unless a route names them."""

from __future__ import annotations

import pytest

from diffsvc.core.endpoints import Folder, FoldError, RoutePattern, endpoint_name, fold_path
from diffsvc.core.rules import RuleSet


@pytest.mark.parametrize(
    ("path", "folded"),
    [
        ("/api/users/42", "/api/users/{id}"),
        ("/api/users/42/orders/7", "/api/users/{id}/orders/{id}"),
        ("/api/orders/3fa85f64-5717-4562-b3fc-2c963f66afa6", "/api/orders/{id}"),
        ("/api/orders/3FA85F6457174562B3FC2C963F66AFA6", "/api/orders/{id}"),  # no dashes
        ("/blobs/0123456789abcdef0123", "/blobs/{id}"),  # long hex (>= 16)
        ("/commits/da39a3ee5e6b4b0d3255bfef95601890afd80709", "/commits/{id}"),
        ("/api/v2/users", "/api/v2/users"),  # words stay
        ("/beef/cafe", "/beef/cafe"),  # short hex-looking words stay
        ("/tags/abc123", "/tags/abc123"),
        ("/", "/"),
        ("/api/users/", "/api/users/"),
    ],
)
def test_fold_path(path: str, folded: str) -> None:
    assert fold_path(path) == folded


def test_endpoint_name_without_routes() -> None:
    assert endpoint_name("GET", "/api/users/42") == "GET /api/users/{id}"
    assert endpoint_name("POST", "/api/users") == "POST /api/users"


def test_configured_route_names_the_endpoint() -> None:
    routes = (
        RoutePattern.compile("GET /api/users/{name}", "user by name"),
        RoutePattern.compile("* /static/{file}", "static"),
    )
    assert endpoint_name("GET", "/api/users/alice", routes) == "user by name"
    assert endpoint_name("GET", "/api/users/42", routes) == "user by name"
    assert endpoint_name("GET", "/api/users/42/", routes) == "user by name"
    assert endpoint_name("HEAD", "/static/app.js", routes) == "static"
    # a different method or a longer path is not the route
    assert endpoint_name("POST", "/api/users/alice", routes) == "POST /api/users/alice"
    assert endpoint_name("GET", "/api/users/alice/orders", routes) == \
        "GET /api/users/alice/orders"


def test_route_template_escapes_regex_characters() -> None:
    route = RoutePattern.compile("GET /a.b/{id}", "dotted")
    assert route.matches("GET", "/a.b/1")
    assert not route.matches("GET", "/axb/1")


def test_first_matching_route_wins_and_ruleset_uses_routes() -> None:
    rules = RuleSet.build(
        {"fields": [], "headers": []},
        [{"match": "GET /api/users/me", "name": "me", "ignore": {"fields": [], "headers": []}},
         {"match": "GET /api/users/{id}", "name": "GET /api/users/{id}",
          "ignore": {"fields": ["$.seen"], "headers": []}}],
    )
    assert rules.endpoint("GET", "/api/users/me") == "me"
    assert rules.endpoint("GET", "/api/users/bob") == "GET /api/users/{id}"
    assert [f.text for f in rules.for_endpoint("GET /api/users/{id}").fields] == ["$.seen"]
    assert rules.for_endpoint("me").fields == ()


@pytest.mark.parametrize(
    ("path", "folded"),
    [
        ("/db/table/1.json", "/db/table/{id}.json"),
        ("/db/table/300.csv", "/db/table/{id}.csv"),
        ("/files/da39a3ee5e6b4b0d3255bfef95601890afd80709.tar", "/files/{id}.tar"),
        ("/items/item-1234", "/items/{slug}"),
        ("/p/blue-cotton-shirt-42", "/p/{slug}"),
        ("/reset/Qm9vbGVhbiBsb2dpYyBpcyBmdW4x", "/reset/{token}"),
        ("/static/app.v2.js", "/static/app.v2.js"),          # a name, not an id
        ("/api/v2/users", "/api/v2/users"),
        ("/docs/getting-started", "/docs/getting-started"),  # a slug without an id
        ("/very-long-word-without-digits-at-all", "/very-long-word-without-digits-at-all"),
    ],
)
def test_default_folds(path: str, folded: str) -> None:
    assert fold_path(path) == folded


def test_folds_are_configurable_and_first_match_wins() -> None:
    folder = Folder.compile(["numeric", {"match": r"[A-Z]{2}\d{4}", "as": "{flight}"}])
    assert folder.path("/flights/LH1234/seats/12") == "/flights/{flight}/seats/{id}"
    assert folder.path("/db/t/1.json") == "/db/t/1.json"  # id-extension not chosen
    assert Folder.compile([]).path("/a/1") == "/a/1"
    for bad in (["numbers"], [{"match": "("}], [{"match": "x"}]):
        with pytest.raises(FoldError):
            Folder.compile(bad)


def test_endpoints_fold_setting_is_checked_at_start_up() -> None:
    from diffsvc import config
    from diffsvc.errors import ConfigError

    cfg = config.load(overrides={"endpoints.fold": ["numeric", "id-extension"]})
    assert RuleSet.from_config(cfg).endpoint("GET", "/t/42.json") == "GET /t/{id}.json"
    assert RuleSet.from_config(config.load(overrides={"endpoints.fold": ["numeric"]})
                               ).endpoint("GET", "/t/42.json") == "GET /t/42.json"
    with pytest.raises(ConfigError) as err:
        config.load(overrides={"endpoints.fold": ["numeric", {"match": "(", "as": "x"}]})
    assert err.value.key == "endpoints.fold[1].match"


def test_a_route_can_match_on_query_parameters_and_is_tried_first() -> None:
    ignore = {"fields": [], "headers": []}
    rules = RuleSet.build(ignore, [
        {"match": "GET /db/{table}.json", "name": "table", "ignore": ignore},
        {"match": "GET /db/{table}.json?_shape=array", "name": "table as array",
         "ignore": ignore},
        {"match": "GET /db/{table}.json?_sort={column}&_size", "name": "sorted page",
         "ignore": ignore},
    ])
    assert rules.endpoint("GET", "/db/t.json", "") == "table"
    assert rules.endpoint("GET", "/db/t.json", "_shape=objects") == "table"
    assert rules.endpoint("GET", "/db/t.json", "x=1&_shape=array") == "table as array"
    assert rules.endpoint("GET", "/db/t.json", "_sort=id") == "table"  # _size missing
    assert rules.endpoint("GET", "/db/t.json", "_size=5&_sort=id") == "sorted page"
    assert rules.endpoint("GET", "/other/1.json", "_shape=array") == "GET /other/{id}.json"
