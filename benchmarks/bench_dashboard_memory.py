"""Memory per replay tab: how much a dashboard process grows for each extra replay of one file.

Writes a large recording (double_auction, 200 agents, 200 steps: ~70 MB) unless one is given,
then, in a fresh process each time, opens 1..N `ReplaySession`s of it (what a replay tab holds)
and prints the resident set size (VmRSS from /proc/self/status) after each. With ``--browser``
it also serves ``mesa-llm dashboard RECORDING`` and opens N tabs in Chromium (Playwright), printing
the server's VmRSS after each tab.

    python benchmarks/bench_dashboard_memory.py [--recording FILE] [--sessions 4] [--browser]

Run it with ``PYTHONPATH`` set to another checkout to compare versions (it uses only
`ReplaySession` and the command line).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the checkout whose mesa_llm is imported (PYTHONPATH): its command line is the one measured
ROOT = Path(importlib.util.find_spec("mesa_llm").origin or ".").resolve().parent.parent  # type: ignore[union-attr]
_SESSIONS = """
import gc, json, sys
from mesa_llm.dashboard.sessions import ReplaySession

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

base = rss()
held, out = [], []
for _ in range(int(sys.argv[2])):
    session = ReplaySession(sys.argv[1])
    session.at(session.final_step // 2)  # a tab shows some step
    held.append(session)
    gc.collect()
    out.append(rss() - base)
print(json.dumps(out))
"""


def _rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def make_recording(folder: Path) -> Path:
    """A ~70 MB double_auction recording in ``folder``."""
    subprocess.run(
        [sys.executable, "-m", "mesa_llm", "run", "double_auction", "--steps", "200", "--set", "populations.0.count=100",
         "--set", "populations.1.count=100", "--out", str(folder), "--json"],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    return next(folder.glob("*.jsonl"))


def sessions(recording: Path, n: int) -> list[int]:
    """Bytes the process grew by after 1..n replay sessions of ``recording``."""
    result = subprocess.run(
        [sys.executable, "-c", _SESSIONS, str(recording), str(n)], check=True, capture_output=True, text=True
    )
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def browser_tabs(recording: Path, n: int) -> list[int]:
    """The dashboard server's VmRSS growth (bytes) after 1..n replay tabs in Chromium."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesa_llm", "dashboard", str(recording), "--no-browser", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            context = browser.new_context()
            warm = context.new_page()  # the first page also loads Solara's own code: not counted
            warm.goto(url)
            warm.wait_for_selector(".price-chart .js-plotly-plot .main-svg", timeout=600_000)
            time.sleep(2)
            base = _rss_of(proc.pid)
            out = []
            for i in range(n):
                started = time.monotonic()
                page = context.new_page()
                page.goto(url)
                page.wait_for_selector(".price-chart .js-plotly-plot .main-svg", timeout=600_000)
                print(f"  tab {i + 1} shown in {time.monotonic() - started:.1f} s", file=sys.stderr)
                time.sleep(2)
                out.append(_rss_of(proc.pid) - base)
            browser.close()
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    """Print the growth per replay session (and per browser tab with --browser)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--recording", type=Path)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        recording = args.recording or make_recording(Path(tmp))
        size = recording.stat().st_size
        print(f"recording: {recording.name}, {size / 2**20:.0f} MB")
        grown = sessions(recording, args.sessions)
        steps = [b - a for a, b in zip([0, *grown], grown, strict=False)]
        print("replay sessions in one process, RSS growth after each (MB): " + ", ".join(f"{g / 2**20:.0f}" for g in grown))
        print(f"  first session {steps[0] / 2**20:.0f} MB, each extra one {sum(steps[1:]) / max(1, len(steps) - 1) / 2**20:.1f} MB")
        if args.browser:
            tabs = browser_tabs(recording, args.sessions)
            print("replay tabs in Chromium, server RSS growth after each (MB): " + ", ".join(f"{t / 2**20:.0f}" for t in tabs))


if __name__ == "__main__":
    main()
