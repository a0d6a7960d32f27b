"""Serving the dashboard beyond this machine takes an explicit ``--allow-remote``, says so in a
warning, and then gives the page to a browser on another machine only with the token (written to
a private file, never printed)."""

from __future__ import annotations

import http.client
import importlib.util
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app

if importlib.util.find_spec("solara") is None:
    pytest.skip("solara is not installed (pip install -e '.[dashboard]')", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The calls of `serve` (replaced: no server starts in the test process)."""
    from mesa_llm.dashboard import server

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server, "serve", lambda *args, **kwargs: calls.append({"args": args, **kwargs}))
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.org"])
def test_a_host_beyond_this_machine_needs_allow_remote(host: str, served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["dashboard", "double_auction", "--host", host, "--port", "0", "--no-browser"])
    assert served == [] and result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --host {host}: not a loopback address"), result.output
    assert "--allow-remote" in lines[0]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_a_loopback_host_needs_nothing_more(host: str, served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["dashboard", "double_auction", "--host", host, "--port", "0", "--no-browser"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output and len(served) == 1


def test_allow_remote_serves_with_a_warning(served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(
        app, ["dashboard", "double_auction", "--host", "0.0.0.0", "--allow-remote", "--port", "0", "--no-browser"]
    )
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0] and "drive" in warnings[0]
    assert len(served) == 1 and served[0]["allow_remote"] is True


def test_an_address_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["dashboard", "double_auction", "--port", str(port), "--no-browser"])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert result.output.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")


def _get(port: int, path: str, host: str, via: str = "127.0.0.1") -> tuple[int, str]:
    conn = http.client.HTTPConnection(via, port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        answer = conn.getresponse()
        answer.read()
        return answer.status, "\n".join(v for k, v in answer.getheaders() if k.lower() == "set-cookie")
    finally:
        conn.close()


def _outward_address() -> str | None:
    """This machine's address on its way out (no packet is sent), or None without a network."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            address = str(s.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _call(guard: Any, client: str, path: str, query: bytes = b"", cookie: str | None = None) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The status and headers `guard` answers an HTTP GET from ``client`` with."""
    import asyncio

    headers = [(b"host", b"192.0.2.10:8765")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": headers, "client": (client, 50000)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    start = sent[0]
    return int(start["status"]), list(start["headers"])


def test_served_remotely_another_machine_needs_the_token() -> None:
    from mesa_llm.dashboard.guard import PageGuard, ServedAddress

    async def page(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"page"})

    guard = PageGuard(page, address=ServedAddress("0.0.0.0", 8765), token="t" * 43, require_url_token=True)
    status, headers = _call(guard, "192.0.2.7", "/")
    assert status == 403 and not any(k == b"set-cookie" for k, _ in headers)
    assert _call(guard, "192.0.2.7", "/", b"token=" + b"t" * 42 + b"x")[0] == 403
    status, headers = _call(guard, "192.0.2.7", "/", b"token=" + b"t" * 43)
    assert status == 200 and (b"set-cookie", b"mesa_llm_dashboard_8765=" + b"t" * 43 + b"; Path=/; HttpOnly; SameSite=Strict") in headers
    assert _call(guard, "192.0.2.7", "/static/x.js", cookie="mesa_llm_dashboard_8765=" + "t" * 43)[0] == 200
    assert _call(guard, "127.0.0.1", "/")[0] == 200  # this machine: as when serving on loopback
    loopback = PageGuard(page, address=ServedAddress("127.0.0.1", 8765), token="t" * 43)
    assert loopback.require_url_token is False


def test_served_remotely_the_token_goes_to_a_private_file_never_to_the_terminal() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesa_llm", "dashboard", "double_auction", "--host", "0.0.0.0", "--allow-remote",
         "--port", str(port), "--no-browser"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        host = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _ = _get(port, "/", host)
                break
            except OSError:
                time.sleep(0.3)
        assert status == 200  # from this machine, as on loopback
        log.seek(0)
        output = log.read().decode(errors="replace")
        match = re.search(r"open the address in (\S+) ", output)
        assert match is not None, output
        url_file = Path(match.group(1))
        assert url_file.stat().st_mode & 0o077 == 0  # only the user may read it
        url = url_file.read_text().strip()
        token = url.split("?token=", 1)[1]
        assert len(token) >= 32 and token not in output  # the terminal never shows it
        # a machine name that is not an address of this one is refused (DNS rebinding)
        assert _get(port, "/?token=" + token, f"attacker.example:{port}")[0] == 403
        outward = _outward_address()
        if outward is not None:  # reached over the network, as another machine would
            there = f"{outward}:{port}"
            assert _get(port, "/", there, via=outward) == (403, "")
            status, cookie = _get(port, "/?token=" + token, there, via=outward)
            assert status == 200 and f"mesa_llm_dashboard_{port}={token}" in cookie
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert not url_file.exists()  # removed when the server stopped
