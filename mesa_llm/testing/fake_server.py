"""A fake OpenAI-compatible chat server for tests, benchmarks and your own cassette tests (stdlib only).

``FakeOpenAIServer`` runs a ``ThreadingHTTPServer`` in a daemon thread on 127.0.0.1 and answers
``POST /v1/chat/completions`` with an OpenAI ``chat.completion`` object and ``GET /v1/models`` with a
small model list. Answers are deterministic (fixed ``created``, id and token counts derived from the
request) so recorded cassettes are stable. Every request is served by its own thread, so concurrent
clients are not serialised (``latency_s`` sleeps per request, in that request's thread).

Fault injection: ``server.enqueue_fault(status=500)`` makes the next request fail with that status;
``enqueue_fault(status=None, delay_s=1.0)`` delays the next request and then answers normally;
``fail_always(status=401)`` gives every later request (after the queued faults) that fault, until
``fail_always(None)`` — a provider that is down, or never answers (``delay_s`` large).

Usage::

    with FakeOpenAIServer(latency_s=0.05) as server:
        model = LiteLLMChatModel("openai/fake-model", api_base=server.base_url, api_key="sk-test")
        ...
        assert server.request_count == 1
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED = 1_700_000_000  # fixed so cassettes do not change between recordings
FAKE_MODELS = ("fake-model", "fake-model-large")

Responder = Callable[[dict[str, Any]], dict[str, Any] | str]


@dataclass(slots=True)
class Fault:
    """What the next request gets instead of a normal answer."""

    status: int | None = 500
    body: dict[str, Any] | str | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}


def error_body(status: int) -> dict[str, Any]:
    """The JSON body the OpenAI API sends with an error of HTTP ``status`` (401, 403, 404, 429, 500, ...)."""
    messages = {
        401: "Incorrect API key provided.",
        403: "You are not allowed to use this model.",
        404: "The model does not exist.",
        429: "Rate limit reached for requests.",
        500: "The server had an error while processing your request.",
        502: "Bad gateway.",
        503: "The server is overloaded.",
    }
    return {
        "error": {
            "message": messages.get(status, f"fake error {status}"),
            "type": _ERROR_TYPES.get(status, "api_error"),
            "param": None,
            "code": str(status),
        }
    }


def _example_for_schema(schema: dict[str, Any]) -> Any:
    """A minimal JSON value that satisfies a simple JSON schema (enough for tests)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return _example_for_schema(schema[combinator][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        return {name: _example_for_schema(sub) for name, sub in props.items()}
    if kind == "array":
        return []
    if kind == "string":
        return "x"
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0.0))
    if kind == "boolean":
        return False
    return None


def default_responder(request: dict[str, Any]) -> dict[str, Any]:
    """Call the tool named "wait" (else the first tool) with ``{}``; else answer the schema or "ok"."""
    tools = request.get("tools") or []
    if tools:
        names = [t.get("function", {}).get("name", "") for t in tools]
        name = "wait" if "wait" in names else names[0]
        return {"content": None, "tool_calls": [{"name": name, "arguments": "{}"}]}
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema", {})
        return {"content": json.dumps(_example_for_schema(schema))}
    if response_format.get("type") == "json_object":
        return {"content": "{}"}
    return {"content": "ok"}


def _count_tokens(value: Any) -> int:
    """A deterministic stand-in for a tokenizer: about four characters per token."""
    return len(json.dumps(value, sort_keys=True, separators=(",", ":"))) // 4 + 1


def build_completion(request: dict[str, Any], answer: dict[str, Any] | str) -> dict[str, Any]:
    """Wrap the responder's assistant message into a full ``chat.completion`` object."""
    if isinstance(answer, str):
        answer = {"content": answer}
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    message: dict[str, Any] = {"role": "assistant", "content": answer.get("content")}
    tool_calls = []
    for i, call in enumerate(answer.get("tool_calls") or []):
        if "function" in call:  # already OpenAI-shaped
            tool_calls.append({"type": "function", **call})
            continue
        arguments = call.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        tool_calls.append(
            {
                "id": call.get("id") or f"call_{digest[:12]}_{i}",
                "type": "function",
                "function": {"name": call["name"], "arguments": arguments},
            }
        )
    if tool_calls:
        message["tool_calls"] = tool_calls
    finish_reason = answer.get("finish_reason") or ("tool_calls" if tool_calls else "stop")
    prompt_tokens = _count_tokens([request.get("messages"), request.get("tools")])
    completion_tokens = _count_tokens(message)
    return {
        "id": f"chatcmpl-{digest[:24]}",
        "object": "chat.completion",
        "created": CREATED,
        "model": request.get("model", "fake-model"),
        "system_fingerprint": "fp_fake",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive handler threads must not block stop()
    request_queue_size = 512  # the default backlog of 5 drops bursts of concurrent connects
    allow_reuse_address = True
    fake: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out close their socket mid-answer: that is expected, not an error.
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    disable_nagle_algorithm = True  # else headers and body in two writes cost a 40 ms delayed ACK
    server: _Server
    timeout = 30  # idle keep-alive connections end eventually

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        headers = dict(headers or {})
        content_type = headers.pop("Content-Type", "application/json")
        lines = [
            f"{self.protocol_version} {status} {reason}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + body)  # one write: no small-packet delay between head and body
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            data = [
                {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}
                for m in FAKE_MODELS
            ]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, error_body(404))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, error_body(404))
            return
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, error_body(400))
            return
        fake = self.server.fake
        fault = fake._record(request, {k.lower(): v for k, v in self.headers.items()})
        try:
            status, payload, headers = self._answer(fake, request, fault)
        finally:
            fake._leave()  # before sending: the client may send its next request at once
        self._send_json(status, payload, headers)

    def _answer(
        self, fake: FakeOpenAIServer, request: dict[str, Any], fault: Fault | None
    ) -> tuple[int, Any, dict[str, str]]:
        delay = fake.latency_s + (fault.delay_s if fault else 0.0)
        if delay > 0:
            time.sleep(delay)
        if fault is None:
            scripted = fake.scripted_reply(request)
            if scripted is not None:  # a subclass answers this one itself (hostile servers)
                return scripted
        if fault is not None and fault.status is not None:
            body = fault.body if fault.body is not None else error_body(fault.status)
            return fault.status, body.encode() if isinstance(body, str) else body, fault.headers
        try:
            return 200, build_completion(request, fake.responder(request)), {}
        except Exception as exc:  # a broken responder is the test's bug: answer 500 and say why
            return 500, {"error": {"message": f"responder failed: {exc!r}"}}, {}


class FakeOpenAIServer:
    """An OpenAI-compatible chat server on 127.0.0.1 in a daemon thread; a context manager."""

    def __init__(
        self,
        responder: Responder | None = None,
        latency_s: float = 0.0,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.responder: Responder = responder or default_responder
        self.latency_s = latency_s
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []  # names lower-cased
        self.in_flight = 0  # chat requests being answered right now
        self.max_in_flight = 0  # the most answered at once (shows clients were not serialised)
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Bind and start serving; returns self."""
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.fake = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open keep-alive connections, release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- API for tests ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def request_count(self) -> int:
        """How many chat-completion requests arrived (faulted ones included)."""
        with self._lock:
            return len(self.requests)

    def enqueue_fault(
        self,
        status: int | None = 500,
        body: dict[str, Any] | str | None = None,
        delay_s: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make the next chat request fail with ``status`` (None: answer normally) after ``delay_s``."""
        with self._lock:
            self._faults.append(Fault(status, body, delay_s, dict(headers or {})))

    def fail_always(
        self,
        status: int | None = 500,
        body: dict[str, Any] | str | None = None,
        delay_s: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Give every chat request this fault (once the queued ones are used); ``fail_always(None)``
        with no delay turns it off."""
        with self._lock:
            off = status is None and not delay_s and body is None
            self._always = None if off else Fault(status, body, delay_s, dict(headers or {}))

    def reset(self) -> None:
        """Forget received requests and pending faults."""
        with self._lock:
            self.requests.clear()
            self.request_headers.clear()
            self._faults.clear()
            self._always = None
            self.max_in_flight = self.in_flight

    def scripted_reply(self, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]] | None:
        """Hook for subclasses: ``(status, body, headers)`` to send instead of the responder's
        answer (``body`` is a JSON-ready value or raw ``bytes``), or None to answer normally."""
        del request
        return None

    # -- internals -------------------------------------------------------------------------------

    def _record(self, request: dict[str, Any], headers: dict[str, str]) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            self.request_headers.append(headers)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self._faults.popleft() if self._faults else self._always

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


if __name__ == "__main__":  # pragma: no cover - manual use: python -m mesa_llm.testing.fake_server
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18765
    with FakeOpenAIServer(port=port) as srv:
        print(f"fake OpenAI server at {srv.base_url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
