"""After a run with secrets in headers, query strings and bodies, nothing stored in Redis holds them: every
key and every value (strings, hashes, lists, sets, sorted sets, streams, and DUMP of each),
searched as plain text, base64 at every alignment, and inside stored gzip bodies."""

from __future__ import annotations

import base64
import gzip
import logging
import zlib
from typing import Any

import orjson
from aiohttp import web
from redis import Redis

from diffsvc import gateway
from diffsvc.core.models import Exchange
from diffsvc.storage import keys, store
from tests.conftest import run_worker_burst
from tests.faults.conftest import get, wait_for

SECRETS = {
    "bearer": "bearer-9f8e7d6c5b4a",
    "cookie": "cookie-sid-0a1b2c3d4e",
    "proxy": "proxy-cred-77aa88bb",
    "apikey": "apikey-5566778899",
    "password": "hunter2-correct-horse",
    "ssn": "078-05-1120",
    "set_cookie_p": "setcookie-primary-aaaa1111",
    "set_cookie_c": "setcookie-candidate-bbbb2222",
    "token_p": "reply-token-primary-cccc",
    "token_c": "reply-token-candidate-dddd",
    "query": "query-token-eeee5555",
}


def upstream(side: str) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = orjson.dumps({"user": {"ssn": SECRETS["ssn"], "name": "ann"},
                             "session": {"token": SECRETS[f"token_{side}"]}, "ok": True})
        if request.query.get("gz"):
            return web.Response(body=gzip.compress(body), content_type="application/json",
                                headers={"Content-Encoding": "gzip",
                                         "Set-Cookie": f"sid={SECRETS[f'set_cookie_{side}']}; Path=/"})
        return web.Response(body=body, content_type="application/json",
                            headers={"Set-Cookie": f"sid={SECRETS[f'set_cookie_{side}']}; HttpOnly"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def needles(secret: str) -> list[bytes]:
    """The secret as bytes and as it would appear inside base64 at any of the 3 alignments."""
    raw = secret.encode()
    out = [raw]
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw)
        skip = (pad * 4 + 2) // 3 + 1  # characters touched by the padding bytes
        out.append(encoded[skip:-4])
    return out


def everything_stored(r: Redis) -> list[bytes]:
    c: Any = r  # redis-py's stubs type replies as bytes | str | Awaitable; these are bytes
    blobs: list[Any] = []
    for key in c.scan_iter(count=1000):
        blobs.append(key)
        kind = c.type(key).decode()
        dumped = c.dump(key)
        if dumped:
            blobs.append(dumped)
        if kind == "string":
            blobs.append(c.get(key))
        elif kind == "hash":
            for k, v in c.hgetall(key).items():
                blobs += [k, v]
        elif kind == "list":
            blobs += c.lrange(key, 0, -1)
        elif kind == "set":
            blobs += list(c.smembers(key))
        elif kind == "zset":
            blobs += [m for m, _ in c.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _, fields in c.xrange(key):
                for k, v in fields.items():
                    blobs += [k, v]
    gzipped = 0
    for blob in list(blobs):  # and the gzip bodies stored inside exchanges, decompressed
        try:
            ex = Exchange.from_bytes(blob)
        except Exception:  # not an exchange
            continue
        for reply in (ex.primary, ex.candidate):
            if reply.body[:2] == b"\x1f\x8b":
                blobs.append(zlib.decompress(reply.body, 16 + zlib.MAX_WBITS))
                gzipped += 1
    assert gzipped, "no gzip body found inside the stored exchanges: the search would miss them"
    return blobs


def test_no_secret_is_stored_anywhere(serve, r, make_config, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    prod, cand = serve(upstream("p")), serve(upstream("c"))
    cfg = make_config(primary=prod.url, candidate=cand.url, allow_side_effects=True,
                      redact_headers=["X-Api-Key"], redact_key="test-key",
                      redact_fields=["$.password", "$.user.ssn", "$..token"])
    gw = serve(gateway.build_app(cfg))
    headers = {"Authorization": f"Bearer {SECRETS['bearer']}",
               "Cookie": f"sid={SECRETS['cookie']}; theme=dark",
               "Proxy-Authorization": f"Basic {SECRETS['proxy']}",
               "X-Api-Key": SECRETS["apikey"], "Content-Type": "application/json"}
    body = orjson.dumps({"login": "ann", "password": SECRETS["password"]})
    n = 0
    for path in ("/login", "/login?gz=1", f"/api/users/7?access_token={SECRETS['query']}&v=2",
                 "/api/users/8?gz=1"):
        for method in ("GET", "POST"):
            status, answer = get(gw.url, path, method, body if method == "POST" else None, headers)
            assert status == 200
            n += 1
    wait_for(lambda: store.gateway_counters(r).get("captured", 0) >= n, what=f"{n} captured")
    run_worker_burst(cfg)
    stats = store.endpoint_stats(r)
    assert sum(s["pairs"] for s in stats.values()) == n
    # the differing tokens are still seen to differ (keyed hashes), without their values
    fields = {f for s in stats.values() for f in s["fields"]}
    assert "$.session.token" in fields

    blobs = everything_stored(r)
    assert len(blobs) > 3 * n
    found = {name for name, secret in SECRETS.items()
             if any(needle in blob for blob in blobs for needle in needles(secret))}
    assert found == set(), f"secrets stored in Redis: {sorted(found)}"
    logged = {name for name, secret in SECRETS.items() if secret in caplog.text}
    assert logged == set(), f"secrets in the logs: {sorted(logged)}"
    # what is stored expires (retention): every exchange and comparison has a TTL
    for pattern in (keys.exchange("*"), keys.comparison("*")):
        ttls = [r.ttl(k) for k in r.scan_iter(match=pattern)]
        assert ttls and all(0 < t <= cfg.retention for t in ttls), (pattern, ttls[:5])


def test_the_search_finds_secrets_when_redaction_is_off(r) -> None:
    """The search above can fail: a secret stored in a body (base64) is found."""
    from diffsvc.core.models import Reply, Request

    ex = Exchange(Request("GET", "/"), Reply(200, [], orjson.dumps({"t": SECRETS["bearer"]})),
                  Reply(200, [], gzip.compress(SECRETS["ssn"].encode())))
    r.set(keys.exchange("probe"), ex.to_bytes())
    blobs = everything_stored(r)
    assert any(n in b for b in blobs for n in needles(SECRETS["bearer"]))
    assert any(n in b for b in blobs for n in needles(SECRETS["ssn"]))
