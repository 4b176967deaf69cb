"""The demo's sample service, as `prod` or as `candidate` (with a deliberate regression).

Both roles return volatile fields on every call (a request id, timestamps, an X-Request-Id
header), so the demo shows that those are not reported while the regression is:
the candidate computes `$.price` of some products with the discount applied twice."""

from __future__ import annotations

import argparse
import hashlib
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

ROLE = web.AppKey("role", str)
PRODUCTS: dict[int, dict[str, Any]] = {i: {"name": f"Product {i}", "base": 10 + (i * 7) % 90} for i in range(1, 51)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _json(payload: dict[str, object]) -> web.Response:
    response = web.json_response(payload)
    response.headers["X-Request-Id"] = str(uuid.uuid4())
    return response


async def user(request: web.Request) -> web.Response:
    uid = int(request.match_info["id"])
    return _json({
        "id": uid,
        "name": f"User {uid}",
        "email": f"user{uid}@example.com",
        "roles": ["reader"] + (["admin"] if uid % 10 == 0 else []),
        "request_id": str(uuid.uuid4()),
        "generated_at": _now(),
    })


async def product(request: web.Request) -> web.Response:
    pid = int(request.match_info["id"])
    item = PRODUCTS.get(pid)
    if item is None:
        return web.json_response({"error": "not found"}, status=404)
    discount = 0.1 if pid % 3 == 0 else 0.0
    price = round(item["base"] * (1 - discount), 2)
    if request.app[ROLE] == "candidate" and discount:
        price = round(price * (1 - discount), 2)  # the regression: discount applied twice
    return _json({
        "id": pid,
        "name": item["name"],
        "price": price,
        "currency": "EUR",
        "stock": {"warehouse": "north", "updated_at": _now()},
        "request_id": str(uuid.uuid4()),
    })


async def search(request: web.Request) -> web.Response:
    query = request.query.get("q", "")
    started = time.perf_counter()
    digest = int(hashlib.sha256(query.encode()).hexdigest(), 16)
    hits = [{"id": (digest >> (i * 8)) % 50 + 1, "score": round(1 - i * 0.1, 2)}
            for i in range(5)]
    return _json({"query": query, "hits": hits, "total": len(hits),
                  "took_ms": round((time.perf_counter() - started) * 1000, 3),
                  "generated_at": _now()})


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def build_app(role: str) -> web.Application:
    app = web.Application()
    app[ROLE] = role
    app.router.add_get("/api/users/{id}", user)
    app.router.add_get("/api/products/{id}", product)
    app.router.add_get("/api/search", search)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="diffsvc demo upstream")
    parser.add_argument("--role", choices=("prod", "candidate"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    args = parser.parse_args()
    web.run_app(build_app(args.role), host=args.host, port=args.port, print=None,
                access_log=None)


if __name__ == "__main__":
    main()
