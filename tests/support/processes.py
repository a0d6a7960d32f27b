"""Real `python -m mesa_llm ...` servers for tests: `mesa-llm serve` and `mesa-llm dashboard` in a
subprocess on a free loopback port, with their output kept for assertions and closed by SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MesaLlmProcess:
    """``python -m mesa_llm ARGS`` from the repository root, its output in a temporary file."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="mesa_llm_proc_", suffix=".log", delete=False)  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mesa_llm", *args], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )  # fmt: skip

    def output(self, tail: int = 4000) -> str:
        """The last ``tail`` characters the process printed."""
        return Path(self.log.name).read_text(errors="replace")[-tail:]

    def check_alive(self, what: str) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {self.proc.returncode}: {self.output()}")

    def close(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; the log file goes."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


class ServeProcess(MesaLlmProcess):
    """``mesa-llm serve --port 0 --recordings DIR ARGS``; its port read from its first line."""

    def __init__(self, recordings: Path, *args: str, start_timeout: float = 60) -> None:
        super().__init__("serve", "--port", "0", "--recordings", str(recordings), *args)
        self.recordings = recordings
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            found = re.search(r"server at http://127\.0\.0\.1:(\d+)/", self.output())
            if found:
                self.port = int(found.group(1))
                return
            self.check_alive("the server")
            time.sleep(0.1)
        self.close()
        raise RuntimeError(f"the server did not start within {start_timeout:.0f} s")

    def raw(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """One request exactly as given (no normalising of the path): (status, body text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A JSON request: (status, parsed JSON answer)."""
        data = None if body is None else json.dumps(body).encode()
        status, text = self.raw(method, path, data, {"Content-Type": "application/json"} if data else None)
        return status, json.loads(text)

    def ws(self, path: str) -> str:
        """The WebSocket URL of ``path`` on this server."""
        return f"ws://127.0.0.1:{self.port}{path}"


class DashboardProcess(MesaLlmProcess):
    """``mesa-llm dashboard TARGET --no-browser --port P ARGS`` until its page answers."""

    def __init__(self, target: str, *args: str, start_timeout: float = 90) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        super().__init__("dashboard", target, "--no-browser", "--port", str(self.port), *args)
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            self.check_alive("the dashboard")
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except OSError:
                time.sleep(0.3)
        self.close()
        raise RuntimeError(f"the dashboard did not answer within {start_timeout:.0f} s")
