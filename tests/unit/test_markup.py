"""HTML and text compared by structure: element paths, every differing line, ignore rules."""

from __future__ import annotations

from diffsvc.core import markup
from diffsvc.core.compare import MAX_REGIONS, compare, diff_lines
from diffsvc.core.models import Exchange, Reply, Request
from diffsvc.core.rules import RuleSet

HTML = ("Content-Type", "text/html; charset=utf-8")
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Rows</title></head>
<body>
  <ul><li>one<li>two <b>2</b> items</ul>
  <p>first<p>second<br>line</div>
  <table><tr><td>a<td>b<tr><td>c</table>
  <a href="http://10.0.0.5:8001/x?page=2" class=next>next &amp; more</a>
  <!-- build 42 -->
  <footer>Powered by app 1.0 <span class="t">Queries took {ms} ms</span></footer>
</body></html>"""


def _exchange(a: bytes, b: bytes, header: tuple[str, str] = HTML) -> Exchange:
    return Exchange(Request("GET", "/page", "", [], b""), Reply(200, [header], a),
                    Reply(200, [header], b))


def test_html_tree_is_built_as_a_browser_would() -> None:
    tree = markup.parse_html(PAGE.format(ms=3))
    [html] = tree["html"]
    assert html["@lang"] == "en" and html["head"][0]["meta"] == [{"@charset": "utf-8"}]
    body = html["body"][0]
    assert [li["#text"] for li in body["ul"][0]["li"]] == ["one", "two items"]
    assert body["ul"][0]["li"][1]["b"] == [{"#text": "2"}]
    # <p> closed by the next <p>; the words around <br> stay apart; stray </div> ignored
    assert [p["#text"] for p in body["p"]] == ["first", "second line"]
    rows = body["table"][0]["tr"]
    assert [[td["#text"] for td in tr["td"]] for tr in rows] == [["a", "b"], ["c"]]
    assert body["a"] == [{"@class": "next", "@href": "http://10.0.0.5:8001/x?page=2",
                          "#text": "next & more"}]
    assert "#comment" not in str(tree) and "build 42" not in str(tree)


def test_html_formatting_and_attribute_order_do_not_count() -> None:
    a = b'<p class="a" id="x">Hello   world</p>'
    b = b'<p id="x"\n   class="a">Hello\n world</p>\n<!-- x -->'
    assert compare(_exchange(a, b), RuleSet.build({"fields": [], "headers": []}, []),
                   1 << 20).verdict == "match"


def test_noise_and_a_real_change_on_one_page_land_on_different_paths() -> None:
    a = PAGE.format(ms=3).encode()
    b = PAGE.format(ms=17).replace("app 1.0", "app 1.1").replace("page=2", "page=3").encode()
    result = compare(_exchange(a, b), RuleSet.build({"fields": [], "headers": []}, []), 1 << 20)
    got = {(d.path, d.location, d.primary, d.candidate) for d in result.diffs}
    assert got == {
        ("$.html[*].body[*].footer[*]['#text']", "$.html[0].body[0].footer[0]['#text']",
         "Powered by app 1.0", "Powered by app 1.1"),
        ("$.html[*].body[*].footer[*].span[*]['#text']",
         "$.html[0].body[0].footer[0].span[0]['#text']", "Queries took 3 ms", "Queries took 17 ms"),
        ("$.html[*].body[*].a[*]['@href']", "$.html[0].body[0].a[0]['@href']",
         "http://10.0.0.5:8001/x?page=2", "http://10.0.0.5:8001/x?page=3"),
    }


def test_an_element_path_from_the_report_is_an_ignore_rule() -> None:
    a = PAGE.format(ms=3).encode()
    b = PAGE.format(ms=17).replace("app 1.0", "app 1.1").encode()
    first = compare(_exchange(a, b), RuleSet.build({"fields": [], "headers": []}, []), 1 << 20)
    noise = [d.path for d in first.diffs if "span" in d.path]
    ruleset = RuleSet.build({"fields": noise, "headers": []}, [])
    again = compare(_exchange(a, b), ruleset, 1 << 20)
    assert again.paths == ["$.html[*].body[*].footer[*]['#text']"]


def test_added_element_and_attribute() -> None:
    a = b"<ul><li>a</li></ul>"
    b = b'<ul class="x"><li>a</li><li>b</li></ul>'
    result = compare(_exchange(a, b), RuleSet.build({"fields": [], "headers": []}, []), 1 << 20)
    assert {(d.path, d.kind) for d in result.diffs} == {
        ("$.ul[*]['@class']", "added"), ("$.ul[*].li", "length_changed"),
        ("$.ul[*].li[*]", "added")}


def test_every_differing_line_is_reported() -> None:
    a = ["a", "b", "c", "d", "e", "f"]
    b = ["a", "B", "c", "d", "E", "f", "g"]
    diffs = diff_lines(a, b)
    assert [(d.path, d.kind, d.primary, d.candidate) for d in diffs] == [
        ("$.line[2]", "changed", "b", "B"), ("$.line[5]", "changed", "e", "E"),
        ("$.line[7]", "added", None, "g")]


def test_a_run_replaced_by_a_run_of_another_length_is_one_region() -> None:
    [diff] = diff_lines(["x", "1", "2", "3", "y"], ["x", "9", "y"])
    assert (diff.path, diff.location, diff.primary, diff.candidate) == (
        "$.line[2]", "$.line[2:5]", "1\n2\n3", "9")


def test_regions_are_capped() -> None:
    a = [f"line {n}" for n in range(3 * MAX_REGIONS)]
    b = [f"line {n}" if n % 2 else f"changed {n}" for n in range(3 * MAX_REGIONS)]
    assert len(diff_lines(a, b)) == MAX_REGIONS


def test_an_ignored_line_is_blanked_and_the_others_still_compared() -> None:
    css = ("Content-Type", "text/css")
    a = b"/* built 10:01 */\nbody { color: #000; }\n"
    b = b"/* built 10:07 */\nbody { color: #111; }\n"
    ruleset = RuleSet.build({"fields": ["$.line[1]"], "headers": []}, [])
    result = compare(_exchange(a, b, css), ruleset, 1 << 20)
    assert result.paths == ["$.line[2]"]
    ruleset = RuleSet.build({"fields": ["$.line[*]", "$.request_id"], "headers": []}, [])
    assert compare(_exchange(a, b, css), ruleset, 1 << 20).verdict == "match"
