"""Serving the dashboard beyond this machine takes an explicit ``--allow-remote``, says so in a
warning, and then gives the page only to a browser holding the token (never printed)."""

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


def _get(port: int, path: str, host: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        answer = conn.getresponse()
        answer.read()
        return answer.status, "\n".join(v for k, v in answer.getheaders() if k.lower() == "set-cookie")
    finally:
        conn.close()


def test_served_remotely_the_page_needs_the_token_which_is_never_printed() -> None:
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
        assert status == 403  # no token: no page (and no cookie)
        log.seek(0)
        output = log.read().decode(errors="replace")
        match = re.search(r"open the address in (\S+) ", output)
        assert match is not None, output
        url_file = Path(match.group(1))
        assert url_file.stat().st_mode & 0o077 == 0  # only the user may read it
        url = url_file.read_text().strip()
        token = url.split("?token=", 1)[1]
        assert len(token) >= 32 and token not in output  # the terminal never shows it
        status, cookie = _get(port, "/?token=" + token[:-1] + "x", host)
        assert status == 403 and cookie == ""
        status, cookie = _get(port, "/?token=" + token, host)
        assert status == 200 and f"mesa_llm_dashboard_{port}={token}" in cookie
        # a machine name that is not an address of this one is refused (DNS rebinding)
        assert _get(port, "/?token=" + token, f"attacker.example:{port}")[0] == 403
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert not url_file.exists()  # removed when the server stopped
