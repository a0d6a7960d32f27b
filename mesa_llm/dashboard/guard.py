"""Keeps the dashboard to its own page: an ASGI middleware in front of the Solara app.

A page of any other site the user visits can send requests to ``http://127.0.0.1:PORT`` and open
WebSockets to it (browsers let it), and a site whose name is rebound to 127.0.0.1 (DNS rebinding)
is even same-origin with it. So every request must name the served address in ``Host``, a request
that carries an ``Origin`` must come from the page itself, and the WebSocket (which drives the
session: Step, Run, Reset) also needs this process's secret token, which the page's own responses
set as a ``SameSite=Strict``, ``HttpOnly`` cookie (a foreign page can neither read nor send it).
Served to the network (``--allow-remote``), a browser on another machine is only given the cookie
for a URL holding the token (the one the command writes to a private file); one on this machine is
treated as when serving on loopback. Every response forbids framing and carries a Content Security
Policy: scripts only from the dashboard itself or inline ones with this response's nonce.

Pure ASGI (no Solara import): testable with any ASGI app.
"""

from __future__ import annotations

import gzip
import hmac
import re
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from mesa_llm.host_header import HostNames, is_loopback, is_wildcard

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Solara's page runs inline bootstrap scripts (allowed by a per-response nonce) and compiles Vue
# templates in the browser (new Function: 'unsafe-eval'); anywidget (Plotly's FigureWidget)
# imports its module from a blob: URL the page's own script made; Vuetify and Plotly set inline
# styles. Nothing is loaded from another origin: Solara serves its bundled assets itself.
_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'unsafe-eval' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self' ws://{host}; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])", re.IGNORECASE)
#: most bytes of an HTML page rewritten with the nonce (Solara's page is ~45 KB)
MAX_PAGE_BYTES = 8 * 1024 * 1024



@dataclass
class ServedAddress:
    """Where the dashboard listens, and so which ``Host`` values name it.

    Bound to a loopback address: the loopback names and addresses. Bound to one other address:
    that address only. Bound to every interface (0.0.0.0 / ::): IP literals (a rebinding attack
    needs a domain name), the loopback names and this machine's own names.
    """

    host: str
    port: int
    hosts: HostNames = field(init=False)

    def __post_init__(self) -> None:
        self.hosts = HostNames(self.host, self.port)

    @property
    def remote(self) -> bool:
        """Served beyond this machine."""
        return not is_loopback(self.host)

    def allows_host(self, value: str | None) -> bool:
        """Whether a request's ``Host`` header names this server."""
        return self.hosts.allows(value)

    def url(self, token: str | None = None) -> str:
        """The page's address (with ``?token=`` when given), as the user would open it."""
        name = self.host.strip().strip("[]")
        if is_wildcard(name):
            name = socket.gethostname() or "127.0.0.1"
        if ":" in name:
            name = f"[{name}]"
        return f"http://{name}:{self.port}/" + (f"?token={token}" if token else "")


def new_token() -> str:
    """A per-process secret for the page's cookie (and the remote URL)."""
    return secrets.token_urlsafe(32)


class PageGuard:
    """ASGI middleware: refuses requests not from the dashboard's own page (see the module
    docstring) and adds frame protection and a CSP to every response.

    ``require_url_token``: a page is only served to a browser on another machine that already
    holds the cookie or opens a URL with ``?token=`` (set when serving beyond this machine).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        address: ServedAddress,
        token: str,
        require_url_token: bool = False,
        on_shutdown: Iterable[Callable[[], None]] = (),
    ) -> None:
        """Wrap ``app`` for a server at ``address`` whose socket needs ``token``;
        ``on_shutdown`` runs once the app has shut down (the server stops: Ctrl-C, SIGTERM)."""
        self.app = app
        self.address = address
        self.token = token
        self.require_url_token = require_url_token
        self.on_shutdown = list(on_shutdown)
        # per port: browsers keep one cookie jar per host name, whatever the port
        self.cookie_name = f"mesa_llm_dashboard_{address.port}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on (or answer 403 / refuse the socket)."""
        kind = scope.get("type")
        if kind == "websocket":
            problem = self._problem(scope, socket=True)
            if problem is not None:
                # closing before accepting refuses the handshake: the client gets HTTP 403
                await send({"type": "websocket.close", "code": 1008, "reason": problem})
                return
            await self.app(scope, receive, send)
            return
        if kind == "lifespan":
            await self.app(scope, receive, self._after_shutdown(send))
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope, socket=False)
        if problem is not None:
            await _send_refusal(send, problem, self._security_headers(scope, ""))
            return
        set_cookie = not self._has_cookie(scope)
        await self.app(scope, receive, _Responder(self, scope, send, set_cookie))

    def _after_shutdown(self, send: Send) -> Send:
        async def forward(message: Message) -> None:
            if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                for callback in self.on_shutdown:
                    callback()
            await send(message)

        return forward

    # ------------------------------------------------------------------ checks

    def _problem(self, scope: Scope, *, socket: bool) -> str | None:
        headers = _headers(scope)
        host = headers.get("host")
        if not self.address.allows_host(host):
            return "host not allowed"
        origin = headers.get("origin")
        if origin is not None and origin != f"http://{host}":
            return "origin not allowed"
        if socket:
            if origin is None:
                return "origin required"  # every browser sends one on a WebSocket
            if not self._has_cookie(scope):
                return "token required"
            return None
        if self._has_cookie(scope) or self._has_url_token(scope):
            return None
        if self.require_url_token and not _from_this_machine(scope):
            return "open the address mesa-llm dashboard wrote to its private file (it holds the token)"
        if scope.get("method") not in ("GET", "HEAD"):
            return "token required"
        return None

    def _has_cookie(self, scope: Scope) -> bool:
        raw = _headers(scope).get("cookie")
        if not raw:
            return False
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return False
        morsel = jar.get(self.cookie_name)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.token.encode())

    def _has_url_token(self, scope: Scope) -> bool:
        query = scope.get("query_string", b"").decode("latin-1")
        given = parse_qs(query).get("token", [])
        return any(hmac.compare_digest(t.encode(), self.token.encode()) for t in given)

    # ------------------------------------------------------------------ response headers

    def _security_headers(self, scope: Scope, nonce: str) -> list[tuple[bytes, bytes]]:
        host = _headers(scope).get("host") or f"127.0.0.1:{self.address.port}"
        if not self.address.allows_host(host):
            host = f"127.0.0.1:{self.address.port}"
        csp = _CSP.format(nonce=nonce or new_token(), host=host)
        return [
            (b"x-frame-options", b"DENY"),
            (b"content-security-policy", csp.encode("latin-1")),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]

    def cookie_header(self) -> tuple[bytes, bytes]:
        """The Set-Cookie header that gives a page the token."""
        value = f"{self.cookie_name}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        return (b"set-cookie", value.encode("latin-1"))


_DROPPED = frozenset(
    {
        b"x-frame-options",
        b"content-security-policy",
        b"x-content-type-options",
        b"referrer-policy",
        b"cross-origin-opener-policy",
        b"cross-origin-resource-policy",
    }
)


class _Responder:
    """The ``send`` of one HTTP request: adds the headers; gives inline scripts of an HTML page
    the nonce its CSP allows (buffering the page to do so)."""

    def __init__(self, guard: PageGuard, scope: Scope, send: Send, set_cookie: bool) -> None:
        self.guard = guard
        self.scope = scope
        self.send = send
        self.set_cookie = set_cookie
        self.start: Message | None = None
        self.body: list[bytes] = []
        self.size = 0
        self.nonce = new_token()

    async def __call__(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            headers = [(k.lower(), v) for k, v in message.get("headers", []) if k.lower() not in _DROPPED]
            headers += self.guard._security_headers(self.scope, self.nonce)
            if self.set_cookie:
                headers.append(self.guard.cookie_header())
            message = {**message, "headers": headers}
            if _header(headers, b"content-type").startswith(b"text/html"):
                self.start = message  # sent with the rewritten body
                return
            await self.send(message)
            return
        if kind == "http.response.body" and self.start is not None:
            chunk = bytes(message.get("body", b""))
            self.size += len(chunk)
            if self.size > MAX_PAGE_BYTES:
                raise RuntimeError("an HTML response larger than the dashboard's page limit")
            self.body.append(chunk)
            if message.get("more_body", False):
                return
            await self._send_page()
            return
        await self.send(message)

    async def _send_page(self) -> None:
        assert self.start is not None
        headers = list(self.start["headers"])
        body = b"".join(self.body)
        if _header(headers, b"content-encoding") == b"gzip":
            body = gzip.decompress(body)
        elif _header(headers, b"content-encoding"):
            raise RuntimeError("an HTML response in an encoding the dashboard cannot rewrite")
        body = _SCRIPT_TAG.sub(b'<script nonce="' + self.nonce.encode() + b'"', body)
        headers = [(k, v) for k, v in headers if k not in (b"content-length", b"content-encoding")]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})


def _from_this_machine(scope: Scope) -> bool:
    # the peer of the TCP connection (uvicorn replaces it by X-Forwarded-For only when the peer is
    # a trusted proxy, by default 127.0.0.1 itself): another machine cannot pose as loopback
    client = scope.get("client")
    return client is not None and is_loopback(str(client[0]))


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (a repeated header: its first value)."""
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes:
    for key, value in headers:
        if key.lower() == name:
            return value.lower() if name != b"set-cookie" else value
    return b""


async def _send_refusal(send: Send, reason: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = f"403 Forbidden: {reason}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
