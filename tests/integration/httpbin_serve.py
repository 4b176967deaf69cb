"""Serve httpbin (a real service none of us wrote) on 127.0.0.1:<free port>; print its URL on
one line, then serve until killed. Run by the Python of httpbin's own venv (its greenlet pin
contradicts playwright's, so it cannot share the test venv): see test_real_service.py.

    python httpbin_serve.py [--change-author]

--change-author: the candidate build's 'bug', /json names another author."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

import httpbin
from werkzeug import serving

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def change_author(app: Wsgi) -> Wsgi:
    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/json":
            return app(environ, start_response)
        captured: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        doc = json.loads(b"".join(app(environ, keep)))
        doc["slideshow"]["author"] = "Somebody Else"
        body = json.dumps(doc).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], headers + [("Content-Length", str(len(body)))])
        return [body]

    return middleware


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = change_author(httpbin.app) if "--change-author" in sys.argv[1:] else httpbin.app
    server = serving.make_server("127.0.0.1", 0, app, threaded=True)
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
