"""A candidate that answers every request after a fixed delay (50 ms by default), or, with a
negative delay, a hung one that accepts connections and requests and never answers.

nginx cannot delay a static answer without third-party modules, so this is a tiny
keep-alive HTTP/1.1 server on a raw asyncio protocol (uvloop): it costs almost no CPU per
request, so what is measured is the delay, not this server.

    python -m bench.slow_upstream PORT BODY_FILE [DELAY_SECONDS]
"""

from __future__ import annotations

import asyncio
import sys

import uvloop


class SlowHTTP(asyncio.Protocol):
    def __init__(self, response: bytes, delay: float) -> None:
        self.response = response
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        loop = asyncio.get_running_loop()
        while True:  # GET requests only: a request ends at the blank line
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.buffer = self.buffer[end + 4:]
            if self.delay >= 0:  # a negative delay: hung, never answers
                loop.call_later(self.delay, self._answer)

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(port: int, body: bytes, delay: float) -> None:
    response = (b"HTTP/1.1 200 OK\r\nServer: slow\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SlowHTTP(response, delay), "127.0.0.1", port,
                                      backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with open(sys.argv[2], "rb") as fh:
        payload = fh.read()
    uvloop.run(serve(int(sys.argv[1]), payload, float(sys.argv[3]) if len(sys.argv) > 3 else 0.05))
