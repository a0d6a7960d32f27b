"""An OpenAI-compatible chat server on one asyncio event loop, for client benchmarks at scale.

``tests/fake_openai_server.py`` serves each connection on its own thread: at 256 connections the
server's thread switching competes with the client for the same two cores and its answers come
late, so a client benchmark would measure the server. This one answers the same completions
(``build_completion`` of ``default_responder``, or canned answers) from a single event loop after
``latency_s`` (a timer, not a sleeping thread), so the latency floor is reachable.

Run as a child process: ``python benchmarks/async_openai_server.py LATENCY_S``; it prints its port,
then answers ``stats`` on stdin with ``[requests, most in flight, cpu_seconds]`` (counts since the
last ``stats``); end of input stops it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fake_openai_server import build_completion, default_responder  # noqa: E402


class _Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.most = 0


class _Protocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, POST with Content-Length only (what the OpenAI SDK sends)."""

    def __init__(self, stats: _Stats, latency_s: float) -> None:
        self.stats = stats
        self.latency_s = latency_s
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            self._answer(head.split(" ", 2)[1], body)

    def _answer(self, path: str, body: bytes) -> None:
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.most = max(stats.most, stats.in_flight)
        if path.rstrip("/").endswith("/chat/completions"):
            request: dict[str, Any] = json.loads(body or b"{}")
            payload = json.dumps(build_completion(request, default_responder(request))).encode()
            status = "200 OK"
        else:
            payload, status = b'{"error": {"message": "not found"}}', "404 Not Found"
        reply = (
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload
        asyncio.get_running_loop().call_later(self.latency_s, self._send, reply)

    def _send(self, reply: bytes) -> None:
        self.stats.in_flight -= 1
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)


async def _serve(latency_s: float) -> None:
    stats = _Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Protocol(stats, latency_s), "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    done = asyncio.Event()

    def commands() -> None:  # stdin on a thread: the loop keeps answering meanwhile
        cpu0 = time.process_time()
        for line in sys.stdin:
            if line.strip() == "stats":
                cpu = time.process_time()
                print(json.dumps([stats.requests, stats.most, cpu - cpu0]), flush=True)
                cpu0, stats.requests, stats.most = cpu, 0, stats.in_flight
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=commands, daemon=True).start()
    await done.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(_serve(float(sys.argv[1]) if len(sys.argv) > 1 else 0.2))
