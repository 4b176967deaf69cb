"""Redaction before storing: secrets never in the stored bytes, equal values stay equal."""

from __future__ import annotations

import gzip
from collections import Counter

import orjson
import pytest

from diffsvc.core.compare import compare
from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.core.redact import MASK, Redactor
from diffsvc.core.rules import RuleSet
from diffsvc.errors import RuleError

SECRET = "s3cr3t-token-value"


def stored(ex: Exchange) -> bytes:
    """What is stored, with the (base64-encoded) bodies decoded too."""
    bodies = [ex.request.body] + [r.body for r in (ex.primary, ex.candidate) if r]
    return ex.to_bytes() + b"".join(bodies)


def exchange(primary_body: bytes = b"{}", candidate_body: bytes = b"{}",
             candidate_headers: list[tuple[str, str]] | None = None,
             encoding: str | None = None) -> Exchange:
    json_h = [("Content-Type", "application/json")]
    if encoding:
        json_h.append(("Content-Encoding", encoding))
    req = Request("POST", "/login", "", [("Authorization", f"Bearer {SECRET}"),
                                         ("Cookie", f"sid={SECRET}; theme=dark"),
                                         ("X-Api-Key", SECRET), ("Content-Type", "application/json")],
                  orjson.dumps({"user": "ann", "password": SECRET}))
    primary = Reply(200, json_h + [("Set-Cookie", f"sid={SECRET}; Path=/; HttpOnly")], primary_body)
    candidate = Reply(200, json_h + (candidate_headers or [("Set-Cookie", f"sid={SECRET}; Path=/; HttpOnly")]),
                      candidate_body)
    return Exchange(req, primary, candidate)


def test_default_headers_and_configured_ones_leave_no_secret() -> None:
    ex = Redactor(headers=["X-Api-Key"], fields=["$.password"], key="k")(exchange())
    raw = stored(ex)
    assert SECRET.encode() not in raw
    auth, cookie = ex.request.header_value("authorization"), ex.request.header_value("cookie")
    assert auth is not None and auth.startswith("Bearer hmac:")
    assert cookie is not None and cookie.startswith("sid=hmac:")
    assert cookie.endswith("; theme=" + Redactor(key="k").hide("dark"))
    assert (ex.primary.header("set-cookie") or "").endswith("; Path=/; HttpOnly")
    assert orjson.loads(ex.request.body)["user"] == "ann"


def test_without_configuration_the_credentials_headers_are_still_redacted() -> None:
    ex = Redactor()(exchange())
    for name in ("authorization", "cookie"):
        assert SECRET not in (ex.request.header_value(name) or "")
    assert SECRET not in (ex.primary.header("set-cookie") or "")
    assert ex.request.header_value("x-api-key") == SECRET  # not configured: kept


def test_json_paths_in_reply_bodies_equal_values_compare_equal() -> None:
    body = orjson.dumps({"id": 1, "user": {"ssn": "123-45-6789", "tokens": [SECRET, "x"]}})
    redactor = Redactor(["X-Api-Key"], ["$.user.ssn", "$..tokens[*]", "$.password"], key="k")
    ex = redactor(exchange(body, body))
    assert b"123-45-6789" not in stored(ex) and SECRET.encode() not in stored(ex)
    assert compare(ex, RuleSet.build({"fields": [], "headers": []}, []), 1 << 20).verdict == "match"


def test_different_secret_values_show_as_a_diff_without_the_values() -> None:
    a = orjson.dumps({"ssn": "111"})
    b = orjson.dumps({"ssn": "222"})
    ex = Redactor(fields=["$.ssn"], key="k")(exchange(a, b, [("Set-Cookie", "sid=other")]))
    result = compare(ex, RuleSet.build({"fields": [], "headers": []}, []), 1 << 20)
    assert result.verdict == "mismatch"
    by_path = {d.path: d for d in result.diffs}
    assert "$.ssn" in by_path
    assert str(by_path["$.ssn"].primary).startswith("hmac:")
    assert "111" not in str(by_path["$.ssn"].primary) and "222" not in str(by_path["$.ssn"].candidate)


def test_compressed_json_body_is_redacted_and_stays_compressed() -> None:
    body = gzip.compress(orjson.dumps({"password": SECRET, "n": 1}))
    ex = Redactor(fields=["$.password"], key="k")(exchange(body, body, encoding="gzip"))
    assert SECRET.encode() not in gzip.decompress(ex.primary.body)
    assert orjson.loads(gzip.decompress(ex.primary.body))["n"] == 1


def test_mask_mode_and_non_json_bodies() -> None:
    ex = Redactor(fields=["$.password"], mode="mask")(exchange(b"not json {", b"\xff\xfe"))
    assert ex.request.header_value("authorization") == f"Bearer {MASK}"
    assert ex.primary.body == b"not json {"  # cannot hold a JSONPath: left as it is


def test_hmac_depends_on_the_key() -> None:
    assert Redactor(key="a").hide("v") != Redactor(key="b").hide("v")
    assert Redactor(key="a").hide("v") == Redactor(key="a").hide("v")


def test_bad_path_names_the_setting() -> None:
    with pytest.raises(RuleError, match="redact.fields"):
        Redactor(fields=["password"])


def test_redact_all_drops_what_it_cannot_redact() -> None:
    broken = exchange()
    broken.request.headers = None  # type: ignore[assignment]
    counters: Counter[str] = Counter()
    out = Redactor().redact_all([exchange(), broken], counters)
    assert len(out) == 1 and counters["redact_failed"] == 1


def test_credential_query_parameters_are_redacted_and_the_rest_kept() -> None:
    redactor = Redactor(key="k", query=["access_token", "SIG"])
    ex = exchange()
    ex.request.query = f"page=2&access_token={SECRET}&Sig=abc%2Fdef&empty=&flag&page=3"
    redactor(ex)
    assert SECRET not in ex.request.query and "abc" not in ex.request.query
    assert ex.request.query == ("page=2&access_token=" + redactor.hide(SECRET) +
                                "&Sig=" + redactor.hide("abc%2Fdef") + "&empty=&flag&page=3")
    # equal tokens stay equal, so two requests with one token still compare alike
    assert redactor.redact_query(f"access_token={SECRET}") == f"access_token={redactor.hide(SECRET)}"


def test_the_default_query_names_cover_common_credentials() -> None:
    from diffsvc.config import Config

    redactor = Redactor.from_config(Config())
    for name in ("token", "api_key", "password", "signature", "client_secret"):
        assert SECRET not in redactor.redact_query(f"{name}={SECRET}&q=shoes")
    assert redactor.redact_query("q=shoes&page=2") == "q=shoes&page=2"
    assert Redactor(mode="mask", query=["t"]).redact_query("t=x") == "t=%5Bredacted%5D"
