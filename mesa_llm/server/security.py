"""The server's front door: an ASGI middleware that checks every request before the API sees it.

* ``Host`` must name this server (a page of another site whose name was rebound to 127.0.0.1 —
  DNS rebinding — is refused);
* a request with an ``Origin`` must come from the served page itself (another site's page may
  send requests to loopback: they are refused); a WebSocket without ``Origin`` is a program's,
  which is fine;
* with a token configured (always beyond loopback), every API request and WebSocket carries it:
  ``Authorization: Bearer TOKEN``, or for a browser's WebSocket (which cannot set headers) the
  subprotocol ``bearer.TOKEN`` next to ``mesa-llm``;
* request bodies are bounded, and so are the WebSocket connections open at once.

Refusals are JSON ``{"error": "one line"}`` with a 4xx/5xx status (a refused WebSocket gets the
same as its handshake's HTTP answer). Pure ASGI: no FastAPI import.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mesa_llm.host_header import HostNames, split_host
from mesa_llm.server.settings import ServerSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: what a client may read without the token: the page, its script and style, the API reference
PUBLIC_PATHS = frozenset({"/", "/page.js", "/page.css", "/docs", "/openapi.json", "/api/health", "/favicon.ico"})
#: the subprotocol the served page and other browser clients speak
SUBPROTOCOL = "mesa-llm"
#: prefix of the subprotocol that carries the token from a browser
TOKEN_SUBPROTOCOL_PREFIX = "bearer."

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def headers_of(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (a repeated header: its first value)."""
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def offered_subprotocols(scope: Scope) -> list[str]:
    """The subprotocols a WebSocket client offered, in its order."""
    raw = headers_of(scope).get("sec-websocket-protocol", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class Connections:
    """The WebSockets open now (shared by the gate, which bounds them, and the API, which reports them)."""

    def __init__(self) -> None:
        self.open_sockets = 0


class Gate:
    """ASGI middleware: the checks of the module docstring, then the app."""

    def __init__(self, app: ASGIApp, settings: ServerSettings, connections: Connections | None = None) -> None:
        """Guard ``app`` served as ``settings`` say (its host, port, token and limits);
        ``connections`` counts the open WebSockets."""
        self.app = app
        self.settings = settings
        self.hosts = HostNames(settings.host, settings.port, settings.extra_hosts)
        self.connections = connections or Connections()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on (or answer with a JSON error)."""
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # ------------------------------------------------------------------ checks

    def problem(self, scope: Scope) -> tuple[int, str] | None:
        """Why a request is refused (status, one line), or None."""
        headers = headers_of(scope)
        host = headers.get("host")
        if not self.hosts.allows(host):
            return 403, "Host not allowed: use the server's own address"
        origin = headers.get("origin")
        if origin is not None and origin != f"http://{host}":
            return 403, "Origin not allowed: only the server's own page may call it from a browser"
        token = self.settings.token
        if token is None or scope.get("path") in PUBLIC_PATHS:
            return None
        given = None
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            given = value.strip()
        elif scope.get("type") == "websocket":
            for offered in offered_subprotocols(scope):
                if offered.startswith(TOKEN_SUBPROTOCOL_PREFIX):
                    given = offered[len(TOKEN_SUBPROTOCOL_PREFIX) :]
                    break
        if given is None:
            return 401, "a bearer token is required (Authorization: Bearer TOKEN)"
        if not hmac.compare_digest(given.encode(), token.encode()):
            return 401, "the bearer token is not this server's"
        return None

    # ------------------------------------------------------------------ http

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = self.problem(scope)
        if problem is not None:
            await send_json(send, problem[0], problem[1], auth=problem[0] == 401)
            return
        if scope.get("method") in _BODY_METHODS:
            limit = self.settings.max_body_bytes
            declared = headers_of(scope).get("content-length")
            if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
                await send_json(send, 413, f"request body larger than {limit} bytes")
                return
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await send_json(send, 413, f"request body larger than {limit} bytes")
                    return
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            delivered = False

            async def replay() -> Message:
                nonlocal delivered
                if not delivered:
                    delivered = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, _with_security_headers(send))
            return
        await self.app(scope, receive, _with_security_headers(send))

    # ------------------------------------------------------------------ websocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = self.problem(scope)
        if problem is None and self.connections.open_sockets >= self.settings.max_connections:
            problem = (503, f"too many connections: at most {self.settings.max_connections} WebSockets at once")
        if problem is not None:
            await deny_websocket(scope, send, problem[0], problem[1])
            return
        self.connections.open_sockets += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.connections.open_sockets -= 1


#: headers every HTTP answer carries (the page's own CSP is set by its route)
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_DEFAULT_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message.get("type") == "http.response.start":
            headers = list(message.get("headers", []))
            names = {k.lower() for k, _ in headers}
            headers += [h for h in _SECURITY_HEADERS if h[0] not in names]
            if b"content-security-policy" not in names:
                headers.append(_DEFAULT_CSP)
            if b"cache-control" not in names:
                headers.append((b"cache-control", b"no-store"))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def send_json(send: Send, status: int, message: str, *, auth: bool = False) -> None:
    """Answer an HTTP request with ``{"error": message}``."""
    body = _error_body(message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if auth:
        headers.append((b"www-authenticate", b'Bearer realm="mesa-llm"'))
    await _with_security_headers(send)({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def deny_websocket(scope: Scope, send: Send, status: int, message: str) -> None:
    """Refuse a WebSocket handshake: an HTTP answer with the JSON error where the server supports
    it (uvicorn does), else a bare close (the client sees 403)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = _error_body(message)
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
        return
    await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})


__all__ = ["Connections", "Gate", "HostNames", "PUBLIC_PATHS", "SUBPROTOCOL", "deny_websocket", "headers_of", "send_json", "split_host"]
