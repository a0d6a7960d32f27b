"""A live session ends with its tab, in a real browser: `mesa-llm dashboard` served in a
subprocess, Debian's Chromium driven by Playwright. Closing the tab stops the run, ends its
recording and deletes its temporary folder; a tab that goes without a word (no close beacon) is
let go after the idle timeout. Skipped without Chromium, Playwright or Solara, unless
MESA_LLM_REQUIRE_BROWSER=1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.extras import CHROMIUM, skip_module_unless
from tests.support.processes import DashboardProcess

ROOT = Path(__file__).resolve().parents[2]


skip_module_unless("browser", "playwright", "solara", "plotly", chromium=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _open_and_step(browser: Any, url: str, steps: int) -> tuple[Any, Path, list[str]]:
    """A tab on the live page after ``steps`` clicks on Step; its recording; CSP violations."""
    # a tab of a browser window that stays open (a page alone is closed with its window, before
    # its close beacon leaves)
    page = browser.contexts[0].new_page() if browser.contexts else browser.new_context().new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(url)
    page.wait_for_selector(".step-counter", timeout=60_000)
    for n in range(1, steps + 1):
        page.get_by_role("button", name="Step", exact=True).click()
        page.wait_for_function(
            "n => document.querySelector('.step-counter').innerText.startsWith(`step ${n} /`)", arg=n, timeout=20_000
        )
    shown = page.get_by_text("recording: ").first.inner_text()
    recording = Path(shown.removeprefix("recording: ").split(" (")[0].strip())
    assert recording.is_file(), shown
    return page, recording, violations


def _wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def _last_event(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_bytes().splitlines()[-1]))


def test_closing_the_tab_ends_the_session_and_deletes_its_temporary_folder(browser: Any) -> None:
    server = DashboardProcess("double_auction")
    try:
        page, recording, violations = _open_and_step(browser, server.url, 2)
        assert violations == []  # the page runs under its CSP
        page.close(run_before_unload=True)  # the tab goes: Solara's close beacon
        assert _wait_for(lambda: not recording.parent.exists(), 20), server.output()
    finally:
        server.close()


def test_a_kept_recording_ends_when_its_tab_closes_or_goes_silent(browser: Any, tmp_path: Path) -> None:
    server = DashboardProcess("double_auction", "--out", str(tmp_path), "--idle-timeout", "3")
    try:
        page, recording, _ = _open_and_step(browser, server.url, 2)
        assert recording.parent == tmp_path
        page.get_by_role("button", name="Run").click()  # running when the tab goes
        page.wait_for_function("() => !document.querySelector('.step-counter').innerText.startsWith('step 2 /')", timeout=20_000)
        page.close(run_before_unload=True)
        assert _wait_for(lambda: _last_event(recording)["event_type"] == "simulation_end", 20), server.output()
        end = _last_event(recording)
        assert end["content"]["status"] == "interrupted" and end["content"]["final_step"] < 30
        size = recording.stat().st_size
        time.sleep(1.0)
        assert recording.stat().st_size == size  # the run stopped stepping
        # Solara's own switch for a page that sends no close beacon (as when the browser crashes)
        page, silent, _ = _open_and_step(browser, server.url + "?solara-no-close-beacon", 1)
        assert silent != recording and silent.parent == tmp_path  # a session of its own
        page.close(run_before_unload=True)
        time.sleep(1.0)
        assert _last_event(silent)["event_type"] == "step_end"  # a page back within the timeout finds it
        assert _wait_for(lambda: _last_event(silent)["event_type"] == "simulation_end", 30), server.output()
        assert tmp_path.is_dir() and recording.exists() and silent.exists()  # kept, as asked
    finally:
        server.close()
