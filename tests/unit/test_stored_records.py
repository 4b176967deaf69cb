"""Records written by diffsvc 0.1.0 (before the code moved into stage subpackages) read
back unchanged: the fixtures are the bytes that release's Exchange.to_bytes and
Comparison.to_bytes wrote."""

from __future__ import annotations

from pathlib import Path

from diffsvc.core.models import Comparison, Exchange

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_an_exchange_written_by_0_1_0_reads() -> None:
    ex = Exchange.from_bytes((FIXTURES / "exchange-0.1.0.bin").read_bytes())
    assert ex.id == "439328b89a164a39b5078ec637cdddec"
    assert (ex.request.method, ex.request.path, ex.request.query) == ("GET", "/api/items/7", "q=1")
    assert ex.request.header_value("accept") == "application/json"
    assert ex.primary.status == 200 and ex.primary.body == b'{"price": 10, "bin": "\\u00ff"}'
    assert ex.candidate.error == "timeout after 2s" and ex.candidate.failure == "other"
    assert ex.secondary is not None and ex.secondary.body == bytes(range(256))
    assert Exchange.from_bytes(ex.to_bytes()) == ex


def test_a_comparison_written_by_0_1_0_reads() -> None:
    c = Comparison.from_bytes((FIXTURES / "comparison-0.1.0.bin").read_bytes())
    assert (c.endpoint, c.verdict, c.body_kind) == ("GET /api/items/{id}", "mismatch", "json")
    assert [(d.path, d.kind, d.primary, d.candidate) for d in c.diffs] == [("$.price", "changed", 10, 11)]
