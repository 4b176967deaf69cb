"""The recorded set of realistic pairs the worker benchmark compares.

An order API's JSON (about 1.9 KB, the size the gateway benchmark serves): nested objects,
an array of line items, and volatile fields (`$.request_id`, `$.generated_at`, the `Date`
and `X-Request-Id` headers) that differ on every call and are ignored by the rules below.
5% of the pairs carry a real difference, of the kinds a candidate build gets wrong: a
changed price, a missing field, a type change, an extra line item (arrays of different
lengths, the case that needs deepdiff). The set is generated from a fixed seed, so every
run compares the same bytes; `python -m bench.pairs FILE` writes it out as JSON lines."""

from __future__ import annotations

import random
import sys
import uuid
from typing import Any

import orjson

from diffsvc.core.models import Exchange, Reply, Request

IGNORE = {"fields": ["$.request_id", "$.generated_at", "$.items[*].reserved_until"],
          "headers": ["date", "x-request-id"]}
MISMATCH_SHARE = 0.05
SEED = 20240601


def order(rng: random.Random, order_id: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for n in range(5):
        sku = rng.randrange(10_000, 99_999)
        items.append({
            "sku": f"SKU-{sku}", "name": f"Product {sku} ({rng.choice(['red', 'blue', 'green'])})",
            "qty": rng.randrange(1, 5), "unit_price": round(rng.uniform(2, 300), 2),
            "tax_rate": 0.2, "tags": rng.sample(["new", "sale", "eco", "gift", "bulk"], 2),
            "reserved_until": f"2024-06-01T12:{n:02d}:00Z",
        })
    subtotal = round(sum(i["qty"] * i["unit_price"] for i in items), 2)
    return {
        "id": order_id, "status": rng.choice(["paid", "shipped", "pending"]),
        "customer": {"id": rng.randrange(1, 10**6), "name": "Ada Lovelace",
                     "email": "ada@example.com", "tier": rng.choice(["gold", "silver"]),
                     "address": {"street": "12 Analytical Way", "city": "London",
                                 "postcode": "NW1 6XE", "country": "GB"}},
        "items": items,
        "totals": {"subtotal": subtotal, "tax": round(subtotal * 0.2, 2),
                   "shipping": 4.95, "total": round(subtotal * 1.2 + 4.95, 2), "currency": "EUR"},
        "links": {"self": f"/api/orders/{order_id}", "customer": "/api/customers/1",
                  "invoice": f"/api/orders/{order_id}/invoice"},
        "flags": {"gift": False, "express": rng.random() < 0.3, "fraud_checked": True},
        "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "generated_at": f"2024-06-01T12:00:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}Z",
    }


def _volatile(rng: random.Random, body: dict[str, Any]) -> dict[str, Any]:
    out = orjson.loads(orjson.dumps(body))
    out["request_id"] = str(uuid.UUID(int=rng.getrandbits(128)))
    out["generated_at"] = f"2024-06-01T12:00:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}Z"
    for item in out["items"]:
        item["reserved_until"] = f"2024-06-01T13:{rng.randrange(60):02d}:00Z"
    return out


def _break(rng: random.Random, body: dict[str, Any], kind: int) -> None:
    if kind == 0:
        body["totals"]["total"] = round(body["totals"]["total"] * 1.1, 2)
    elif kind == 1:
        del body["customer"]["tier"]
    elif kind == 2:
        body["items"][1]["qty"] = str(body["items"][1]["qty"])
    else:
        body["items"].append(dict(body["items"][0], sku="SKU-00000"))


def _reply(rng: random.Random, body: dict[str, Any]) -> Reply:
    raw = orjson.dumps(body, option=orjson.OPT_INDENT_2)
    headers = [("Server", "nginx"), ("Date", f"Sat, 01 Jun 2024 12:00:{rng.randrange(60):02d} GMT"),
               ("Content-Type", "application/json"), ("Content-Length", str(len(raw))),
               ("X-Request-Id", uuid.UUID(int=rng.getrandbits(128)).hex)]
    return Reply(200, headers, raw, round(rng.uniform(1, 20), 3))


def body_bytes(order_id: int = 1) -> bytes:
    """One primary body, as the gateway benchmark's upstreams serve it."""
    return orjson.dumps(order(random.Random(SEED), order_id), option=orjson.OPT_INDENT_2)


def recorded(n: int = 2000) -> list[Exchange]:
    """n exchanges, primary vs candidate; every 20th differs for real (5%)."""
    rng = random.Random(SEED)
    out = []
    stride = round(1 / MISMATCH_SHARE)
    for i in range(n):
        primary = order(rng, 1000 + i % 97)
        candidate = _volatile(rng, primary)
        if i % stride == stride - 1:
            _break(rng, candidate, (i // stride) % 4)
        request = Request("GET", f"/api/orders/{1000 + i % 97}", "",
                          [("Host", "shop.example"), ("Accept", "application/json")])
        out.append(Exchange(request, _reply(rng, primary), _reply(rng, candidate),
                            id=f"bench{i:06d}", captured_at=1_717_243_200.0 + i / 1000))
    return out


if __name__ == "__main__":  # pragma: no cover - a convenience to inspect the set
    with open(sys.argv[1] if len(sys.argv) > 1 else "/dev/stdout", "wb") as fh:
        for ex in recorded():  # JSON lines: the bodies (JSON) as text
            fh.write(orjson.dumps({"id": ex.id, "path": ex.request.path,
                                   "primary": ex.primary.body.decode(),
                                   "candidate": ex.candidate.body.decode()}) + b"\n")
