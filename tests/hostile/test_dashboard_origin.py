"""The dashboard answers its own page only: `mesa-llm dashboard` served for real (a subprocess on
a free loopback port) and probed with plain HTTP requests and raw WebSocket handshakes, as a page
of another site (or a site rebound to 127.0.0.1) would send them."""

from __future__ import annotations

import base64
import http.client
import importlib.util
import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import DashboardProcess

if importlib.util.find_spec("solara") is None:
    pytest.skip("solara is not installed (pip install -e '.[dashboard]')", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


class Response:
    """Status, headers (lower-case names, repeated ones joined by newlines) and body."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.all = [(k.lower(), v) for k, v in headers]
        self.body = body

    def header(self, name: str) -> str:
        return "\n".join(v for k, v in self.all if k == name)


class Dashboard(DashboardProcess):
    """`python -m mesa_llm dashboard double_auction` on a free loopback port, until closed; requests
    and handshakes with exactly the headers a test gives."""

    def __init__(self) -> None:
        super().__init__("double_auction")
        self.host = f"127.0.0.1:{self.port}"

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> Response:
        """One HTTP request with exactly these headers (``Host`` defaults to the served one)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for key, value in {"Host": self.host, **(headers or {})}.items():
                conn.putheader(key, value)
            conn.endheaders()
            answer = conn.getresponse()
            return Response(answer.status, answer.getheaders(), answer.read())
        finally:
            conn.close()

    def token_cookie(self) -> str:
        """The ``name=value`` of the token cookie the page sets (empty when it sets none)."""
        page = self.request("GET", "/")
        for line in page.header("set-cookie").split("\n"):
            if line.startswith("mesa_llm_dashboard"):
                return line.split(";")[0]
        return ""

    def handshake(self, headers: dict[str, str]) -> int:
        """The HTTP status answering a WebSocket handshake on the kernel socket the page opens
        (101: accepted), with these headers on top of the handshake's own."""
        path = f"/jupyter/api/kernels/{uuid.uuid4()}/channels?session_id={uuid.uuid4()}"
        lines = {
            "Host": self.host,
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Version": "13",
            **headers,
        }
        raw = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines.items()) + "\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(raw.encode("latin-1"))
            status = b""
            while b"\r\n" not in status:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                status += chunk
        match = re.match(rb"HTTP/1\.[01] (\d{3})", status)
        assert match is not None, status[:200]
        return int(match.group(1))


@pytest.fixture(scope="module")
def server() -> Iterator[Dashboard]:
    dashboard = Dashboard()
    try:
        yield dashboard
    finally:
        dashboard.close()


def test_a_foreign_host_header_is_refused(server: Dashboard) -> None:
    assert server.request("GET", "/").status == 200  # its own address
    assert server.request("GET", "/", {"Host": f"localhost:{server.port}"}).status == 200
    # a site whose name was rebound to 127.0.0.1 sends its own name; so does a wrong port
    for host in (f"attacker.example:{server.port}", "attacker.example", f"127.0.0.1:{server.port + 1}", f"127.0.0.1.attacker.example:{server.port}"):
        answer = server.request("GET", "/", {"Host": host})
        assert answer.status == 403, host
        assert answer.header("x-frame-options") == "DENY"  # refusals are not framable either
    assert server.request("GET", "/static/main-vuetify.js", {"Host": f"attacker.example:{server.port}"}).status == 403


def test_a_request_from_a_foreign_origin_is_refused(server: Dashboard) -> None:
    assert server.request("GET", "/", {"Origin": f"http://{server.host}"}).status == 200
    for origin in ("http://attacker.example", "null", f"https://{server.host}", f"http://127.0.0.1:{server.port + 1}"):
        assert server.request("GET", "/", {"Origin": origin}).status == 403, origin
    # the tab-close beacon of Solara: a foreign page must not close (or even reach) a session
    close = f"/_solara/api/close/{uuid.uuid4()}?session_id=x"
    assert server.request("POST", close, {"Origin": "http://attacker.example", "Content-Length": "0"}).status == 403


def test_a_post_without_the_token_is_refused(server: Dashboard) -> None:
    close = f"/_solara/api/close/{uuid.uuid4()}?session_id=x"
    assert server.request("POST", close, {"Content-Length": "0"}).status == 403
    cookie = server.token_cookie()
    assert server.request("POST", close, {"Content-Length": "0", "Cookie": cookie}).status == 200


def test_the_page_cannot_be_framed_and_runs_only_its_own_scripts(server: Dashboard) -> None:
    page = server.request("GET", "/")
    assert page.status == 200
    assert page.header("x-frame-options") == "DENY"
    csp = page.header("content-security-policy")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["frame-ancestors"] == ["'none'"]
    script_src = directives["script-src"]
    assert "'unsafe-inline'" not in script_src and "*" not in script_src and "http:" not in script_src
    nonces = [s for s in script_src if s.startswith("'nonce-")]
    assert len(nonces) == 1
    nonce = nonces[0][len("'nonce-") : -1]
    scripts = re.findall(rb"<script\b[^>]*>", page.body)
    assert scripts and all(f'nonce="{nonce}"'.encode() in tag for tag in scripts)
    assert directives["default-src"] == ["'self'"] and directives["object-src"] == ["'none'"]
    assert server.request("GET", "/").header("content-security-policy") != csp  # a nonce per response


def test_the_page_gives_its_token_in_a_same_site_cookie(server: Dashboard) -> None:
    page = server.request("GET", "/")
    cookies = [c for c in page.header("set-cookie").split("\n") if c.startswith(f"mesa_llm_dashboard_{server.port}=")]
    assert len(cookies) == 1
    attributes = {a.strip().lower() for a in cookies[0].split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    token = cookies[0].split(";")[0].split("=", 1)[1]
    assert len(token) >= 32 and server.token_cookie() == cookies[0].split(";")[0]  # one per process
    assert token.encode() not in page.body  # not readable from the page's text


def test_the_socket_needs_the_token(server: Dashboard) -> None:
    own = f"http://{server.host}"
    cookie = server.token_cookie()
    assert server.handshake({"Origin": own, "Cookie": cookie}) == 101  # the page itself
    assert server.handshake({"Origin": own}) == 403
    assert server.handshake({"Origin": own, "Cookie": cookie.split("=")[0] + "=guessed"}) == 403
    assert server.handshake({"Origin": own, "Cookie": "solara-session-id=abc"}) == 403


def test_the_socket_refuses_a_foreign_origin(server: Dashboard) -> None:
    cookie = server.token_cookie()
    for origin in ("http://attacker.example", "null", f"http://localhost:{server.port}"):
        # (localhost is this server, but not the address this socket's page was loaded from)
        assert server.handshake({"Origin": origin, "Cookie": cookie}) == 403, origin
    assert server.handshake({"Cookie": cookie}) == 403  # a browser always sends an Origin


def test_the_socket_refuses_a_foreign_host(server: Dashboard) -> None:
    cookie = server.token_cookie()
    rebound = f"attacker.example:{server.port}"
    assert server.handshake({"Host": rebound, "Origin": f"http://{rebound}", "Cookie": cookie}) == 403
