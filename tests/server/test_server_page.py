"""The demo page of `mesa-llm serve` in headless Chromium: it lists the scenarios, starts a
simulation and draws its price from the WebSocket (a non-Python front-end that works), with no
script from anywhere but the server and no console error.

Needs the server extra, Playwright and Debian's Chromium: skipped without them unless
MESA_LLM_REQUIRE_SERVER=1 or MESA_LLM_REQUIRE_BROWSER=1 (set by .ci/run). A screenshot goes to
$MESA_LLM_ARTIFACTS (default: <tmp>/mesa_llm_artifacts).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.extras import CHROMIUM, skip_module_unless
from tests.support.processes import ServeProcess

ROOT = Path(__file__).resolve().parents[2]


skip_module_unless("browser", "fastapi", "uvicorn", "websockets", "playwright", chromium=True, also_required_by=("server",))

ARTIFACTS = Path(os.environ.get("MESA_LLM_ARTIFACTS") or Path(tempfile.gettempdir()) / "mesa_llm_artifacts")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    running = ServeProcess(tmp_path)
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


def test_the_page_starts_a_simulation_and_draws_its_price(server: ServeProcess) -> None:
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
