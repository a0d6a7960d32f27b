"""The demo page of `mesa-llm serve` in headless Chromium: it lists the scenarios, starts a
simulation and draws its price from the WebSocket (a non-Python front-end that works), with no
script from anywhere but the server and no console error.

Needs the server extra, Playwright and Debian's Chromium: skipped without them unless
MESA_LLM_REQUIRE_SERVER=1 or MESA_LLM_REQUIRE_BROWSER=1 (set by .ci/run). A screenshot goes to
$MESA_LLM_ARTIFACTS (default: <tmp>/mesa_llm_artifacts).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]


def _missing() -> tuple[str, str] | None:
    for module in ("fastapi", "uvicorn", "websockets"):
        if importlib.util.find_spec(module) is None:
            return "MESA_LLM_REQUIRE_SERVER", f"{module} is not installed (pip install -e '.[server]')"
    if importlib.util.find_spec("playwright") is None:
        return "MESA_LLM_REQUIRE_BROWSER", "playwright is not installed (pip install -e '.[browser]')"
    if not os.access(CHROMIUM, os.X_OK):
        return "MESA_LLM_REQUIRE_BROWSER", f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


_reason = _missing()
if _reason is not None:
    if os.environ.get("MESA_LLM_REQUIRE_SERVER") == "1" or os.environ.get(_reason[0]) == "1":
        raise RuntimeError(f"the server's page test is required but {_reason[1]}")
    pytest.skip(_reason[1], allow_module_level=True)

ARTIFACTS = Path(os.environ.get("MESA_LLM_ARTIFACTS") or Path(tempfile.gettempdir()) / "mesa_llm_artifacts")


class Server:
    """``python -m mesa_llm serve --port 0`` until closed; its port read from its first line."""

    def __init__(self, recordings: Path) -> None:
        self.recordings = recordings
        self.log = tempfile.NamedTemporaryFile(prefix="mesa_llm_serve_", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mesa_llm", "serve", "--port", "0", "--recordings", str(recordings)],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"server at http://127\.0\.0\.1:(\d+)/", self.output())
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self.output()}")
            time.sleep(0.1)
        self.close()
        raise RuntimeError(f"the server did not start within 60 s: {self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    try:
        yield running
    finally:
        running.close()


def _poll(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the page did not get there in time"
        time.sleep(0.1)


def _points(page: Any) -> int:
    return int(page.get_attribute("#chart", "data-points") or 0)


def test_the_page_starts_a_simulation_and_draws_its_price(server: Server) -> None:
    from playwright.sync_api import sync_playwright

    url = f"http://127.0.0.1:{server.port}/"
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1100})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(url)
            # (polled from Python: the page's CSP forbids the string evaluation wait_for_function uses)
            _poll(lambda: page.locator("#scenario option").count() > 5)
            page.select_option("#scenario", "double_auction")
            page.fill("#steps", "400")
            page.fill("#rate", "25")
            chart = page.locator("#chart")
            blank = chart.screenshot()
            page.click("#start-button")
            _poll(lambda: _points(page) >= 5)
            first = chart.screenshot()
            drawn = _points(page)
            _poll(lambda: _points(page) >= drawn + 10)
            later = chart.screenshot()
            assert first != blank and later != first  # it draws, and the drawing moves on
            assert re.search(r"step \d+ / 400 — running — widget last price", page.inner_text("#status"))
            _poll(lambda: page.locator("#simulations tbody tr[data-id='sim-1']").count() == 1)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "server_page.png"), full_page=True)
            # the page's Stop button ends the run through the API
            page.click("#simulations tbody tr[data-id='sim-1'] button:has-text('Stop')")
            _poll(lambda: "ended (stopped)" in page.inner_text("#status"))
        finally:
            browser.close()
    assert problems == []
    assert all(r.startswith(url) or r.startswith(f"ws://127.0.0.1:{server.port}/") for r in requests), requests
    recording: list[dict[str, Any]] = [
        json.loads(line) for line in next(server.recordings.glob("*.jsonl")).read_text().splitlines()
    ]
    assert recording[-1]["event_type"] == "simulation_end" and recording[-1]["content"]["status"] == "stopped"
