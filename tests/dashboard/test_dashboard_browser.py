"""The dashboard in a real browser: `mesa-llm dashboard` served in a subprocess, driven by
Playwright through Debian's Chromium. Skipped when Chromium, Playwright or Solara is missing,
unless MESA_LLM_REQUIRE_BROWSER=1 (set by .ci/run), which makes a missing one a failure.

Screenshots of both modes go to $MESA_LLM_ARTIFACTS (default: <tmp>/mesa_llm_artifacts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.extras import CHROMIUM, skip_module_unless
from tests.support.processes import DashboardProcess

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = '<script>window.__pwned = 1</script> **bold** <b class="injected">b</b>'


skip_module_unless("browser", "playwright", "solara", "plotly", chromium=True)

ARTIFACTS = Path(os.environ.get("MESA_LLM_ARTIFACTS") or Path(tempfile.gettempdir()) / "mesa_llm_artifacts")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _open(browser: Any, url: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector(".step-counter", timeout=60_000)
    page.wait_for_selector(".price-chart .js-plotly-plot .main-svg", timeout=60_000)
    return page, errors


def _chart(page: Any) -> str:
    return str(page.inner_html(".price-chart .js-plotly-plot .main-svg"))


def _wait_changed(page: Any, selector: str, before: str) -> None:
    page.wait_for_function(
        "([sel, before]) => document.querySelector(sel) && document.querySelector(sel).innerHTML !== before",
        arg=[selector, before],
        timeout=20_000,
    )


def test_live_page_steps_and_marks_a_stress_event(browser: Any) -> None:
    server = DashboardProcess("double_auction")
    try:
        page, errors = _open(browser, server.url)
        counter = page.locator(".step-counter")
        assert counter.inner_text() == "step 0 / 30"
        for expected in (1, 2, 3):
            before = _chart(page)
            page.get_by_role("button", name="Step", exact=True).click()
            page.wait_for_function(
                "n => document.querySelector('.step-counter').innerText === `step ${n} / 30`", arg=expected, timeout=20_000
            )
            _wait_changed(page, ".price-chart .js-plotly-plot .main-svg", before)
        points = page.locator(".price-chart .scatterlayer .trace").last.locator(".point")
        assert points.count() >= 1  # clearing prices drawn (a step without trade leaves a gap)
        page.get_by_role("button", name="Inject stress event").click()
        page.wait_for_selector(".price-chart .js-plotly-plot :text('shift_private (next step)')", timeout=20_000)
        page.get_by_role("button", name="Step", exact=True).click()
        page.wait_for_selector(".price-chart .js-plotly-plot :text-is('shift_private')", timeout=20_000)
        page.wait_for_timeout(300)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard_live.png"), full_page=True)
        assert errors == []
    finally:
        server.close()


def _hostile_recording(tmp: Path) -> Path:
    """A real double_auction recording with a message holding markup, at step 2."""
    subprocess.run(
        [sys.executable, "-m", "mesa_llm", "run", "double_auction", "--steps", "6", "--out", str(tmp), "--json"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    source = next(tmp.glob("*.jsonl"))
    events = [json.loads(line) for line in source.read_text().splitlines()]
    at = next(i for i, e in enumerate(events) if e["event_type"] == "step_end" and e["step"] == 2)
    message = {**events[at], "event_id": events[at]["event_id"] + "m", "event_type": "message", "agent_id": 1,
               "content": {"recipient_ids": [7], "text": HOSTILE, "channel": "direct"}}  # fmt: skip
    events.insert(at, message)
    path = tmp / "hostile.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_replay_slider_moves_through_steps_and_messages_stay_text(browser: Any, tmp_path: Path) -> None:
    server = DashboardProcess(str(_hostile_recording(tmp_path)))
    try:
        page, errors = _open(browser, server.url)
        counter = page.locator(".step-counter")
        assert counter.inner_text() == "step 1 / 6"
        slider = page.locator(".replay-slider [role=slider]")
        slider.focus()
        for expected in (2, 3):
            before = _chart(page)
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "n => document.querySelector('.step-counter').innerText === `step ${n} / 6`", arg=expected, timeout=20_000
            )
            _wait_changed(page, ".price-chart .js-plotly-plot .main-svg", before)
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => document.querySelector('.step-counter').innerText === 'step 2 / 6'", timeout=20_000)
        feed = page.locator(".message-feed")
        feed.wait_for(timeout=20_000)
        assert HOSTILE in feed.inner_text()  # shown as its text, markup and all
        assert feed.locator("b.injected").count() == 0 and page.locator("script:text('__pwned')").count() == 0
        assert page.evaluate("() => window.__pwned") is None
        page.wait_for_timeout(300)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard_replay.png"), full_page=True)
        assert errors == []
    finally:
        server.close()
