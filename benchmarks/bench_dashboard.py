"""How fast the live dashboard paints and steps, measured in a real browser, against a baseline.

First paint: serves `mesa-llm dashboard double_auction` from this tree and from a baseline
checkout (`git archive` of ``--baseline``, default the last commit before the plotly.js bundle
was served once per page) in subprocesses, alternately, and opens each in Debian's Chromium
(Playwright) with a fresh cache (first visit), then again (second visit, the browser's cache).
Per visit it prints, in the page's own clock from navigation start:

- first contentful paint (the browser's ``first-contentful-paint`` entry);
- controls: the step counter in the DOM;
- live page: the controls and every chart drawn: each of the page's ``CHARTS`` Plotly charts
  has a laid-out figure with its traces (``gd._fullData``; before the first step they hold no
  points) and its SVG, title included, in the DOM;
- bundle fetches: requests for plotly.js (the widget bundle) the page made.

Then (this tree only) it clicks Step N times and prints the time until the step counter and the
price chart changed, and, on the server side, what one update of the price chart costs with each
way of building it (validated ``go.Figure``, the plain dict the dashboard sends, an Altair spec).

    python benchmarks/bench_dashboard.py [--rounds 3] [--steps 10] [--baseline REF]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
SCENARIO = "double_auction"
CHARTS = 2
"""Plotly charts on double_auction's live page: the price chart and supply/demand."""
BASELINE = "8ce130d"
"""main before the bundle was served once per page (it was sent over the WebSocket per chart)."""

# polled every frame from navigation start: the first time each condition held (page clock, ms)
_MARKS = """
window.__marks = {};
(() => {
  const charts = CHARTS;
  const poll = () => {
    const m = window.__marks, now = performance.now();
    if (m.controls === undefined && document.querySelector('.step-counter')) m.controls = now;
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    if (m.live === undefined && m.controls !== undefined && plots.length >= charts &&
        plots.every(gd => gd._fullData && gd._fullData.length > 0 && gd.querySelector('.main-svg .gtitle'))) m.live = now;
    if (m.live === undefined) requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
})();
""".replace("CHARTS", str(CHARTS))


class Server:
    """`python -m mesa_llm dashboard SCENARIO` of the tree at ``root`` on a free port, until closed."""

    def __init__(self, root: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "PYTHONPATH": str(root)}
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mesa_llm", "dashboard", SCENARIO, "--no-browser", "--port", str(self.port)],
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the dashboard exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except OSError:
                time.sleep(0.3)
        self.close()
        raise RuntimeError("the dashboard did not answer within 90 s")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def baseline_tree(ref: str, into: Path) -> Path:
    """The files of ``ref`` (this repository's history) under ``into``."""
    archive = into / "baseline.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def visits(browser: Any, root: Path) -> list[dict[str, float]]:
    """A first and a second visit to the live page served from ``root``: the marks of each."""
    server = Server(root)
    out: list[dict[str, float]] = []
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1600})
        context.add_init_script(_MARKS)
        for _ in ("first", "second"):
            page = context.new_page()
            fetches = []
            page.on("request", lambda r, f=fetches: f.append(r.url) if "plotly" in r.url or r.url.startswith("blob:") else None)
            page.goto(server.url)
            page.wait_for_function("() => window.__marks.live !== undefined", timeout=120_000, polling=200)
            marks = page.evaluate(
                "() => ({...window.__marks, fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime})"
            )
            # the old widget imported each chart's copy from a blob: URL, the new one a file
            marks["bundle"] = sum("plotly-widget" in u for u in fetches) or sum(u.startswith("blob:") for u in fetches)
            out.append(marks)
            page.close()
        context.close()
    finally:
        server.close()
    return out


def first_paint(rounds: int, baseline: str) -> None:
    """Print first paint of the live page, baseline and this tree alternately, ``rounds`` times."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench_dashboard_") as tmp:
        trees = {f"baseline {baseline}": baseline_tree(baseline, Path(tmp)), "this tree": ROOT}
        results: dict[str, list[list[dict[str, float]]]] = {name: [] for name in trees}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for _ in range(rounds):
                for name, root in trees.items():
                    results[name].append(visits(browser, root))
            browser.close()
    print(f"first paint of {SCENARIO}'s live page (s from navigation, median of {rounds}; load {_load()}):")
    print(f"  {'':28} {'first contentful':>17} {'controls':>9} {'live page':>10} {'bundle fetches':>15}")
    for visit, label in ((0, "first visit"), (1, "second visit")):
        for name, runs in results.items():
            marks = [r[visit] for r in runs]

            def med(key: str, marks: list[dict[str, float]] = marks) -> str:
                values = [m[key] for m in marks if m.get(key) is not None]
                return f"{statistics.median(values) / 1000:.2f}" if values else "n/a"

            fetches = "/".join(str(int(m["bundle"])) for m in marks)
            print(f"  {label + ', ' + name:28} {med('fcp'):>17} {med('controls'):>9} {med('live'):>10} {fetches:>15}")
    for visit, label in ((0, "first"), (1, "second")):
        base, ours = (statistics.median(r[visit]["live"] for r in runs) for runs in results.values())
        print(f"  live page, {label} visit: this tree / baseline = {ours / base:.2f}")


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def browser_steps(steps: int) -> None:
    """Click Step ``steps`` times (this tree); print the time to the counter and chart changes."""
    from playwright.sync_api import sync_playwright

    server = Server(ROOT)
    counter_ms: list[float] = []
    chart_ms: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(server.url)
            page.wait_for_selector(".price-chart .js-plotly-plot .main-svg", timeout=120_000)
            button = page.get_by_role("button", name="Step", exact=True)
            for _ in range(steps):
                counter = page.inner_text(".step-counter")
                chart = page.inner_html(".price-chart .js-plotly-plot .main-svg")
                # both changes are watched in the page: no polling delay from here
                page.evaluate(
                    """([counter, chart]) => { window.__t0 = performance.now(); window.__done = new Promise(resolve => {
                        const out = {};
                        const check = () => {
                          const now = performance.now() - window.__t0;
                          if (out.counter === undefined && document.querySelector('.step-counter').innerText !== counter) out.counter = now;
                          if (out.chart === undefined && document.querySelector('.price-chart .js-plotly-plot .main-svg').innerHTML !== chart) out.chart = now;
                          if (out.counter !== undefined && out.chart !== undefined) resolve(out); else requestAnimationFrame(check);
                        };
                        requestAnimationFrame(check);
                    }); }""",
                    [counter, chart],
                )
                button.click()
                result = page.evaluate("() => window.__done")
                counter_ms.append(result["counter"])
                chart_ms.append(result["chart"])
                page.wait_for_timeout(100)
            browser.close()
    finally:
        server.close()
    for label, values in (("step counter", counter_ms), ("price chart", chart_ms)):
        ordered = sorted(values)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(
            f"Step click -> {label} changed: median {statistics.median(values):.0f} ms, "
            f"p90 {p90:.0f} ms, max {max(values):.0f} ms over {len(values)} steps"
        )


def _timed(fn, repeat: int = 10) -> float:  # type: ignore[no-untyped-def]
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1000


def chart_builders() -> None:
    """Server-side cost of one price-chart update, by chart library."""
    import plotly.graph_objects as go

    try:
        import altair as alt
    except ImportError:  # not a dependency of the dashboard: only a comparison
        alt = None

    from mesa_llm.dashboard import charts
    from mesa_llm.dashboard.sessions import LiveSession
    from mesa_llm.scenario import load_scenario

    live = LiveSession(load_scenario(SCENARIO))
    for _ in range(30):
        live.step()
    prices, stress = live.data.prices(), live.data.stress_events()
    as_dict = charts.price_figure(prices, stress, "widget")
    rows = prices[prices["good"] == "widget"]

    def altair_spec() -> dict:  # type: ignore[type-arg]
        base = alt.Chart(rows).encode(x="step:Q")
        band = base.mark_area(opacity=0.2, color="green").encode(y="ce_low:Q", y2="ce_high:Q")
        line = base.mark_line(point=True).encode(y="price:Q")
        bars = base.mark_bar(opacity=0.3).encode(y="volume:Q")
        return alt.layer(alt.layer(band, line), bars).resolve_scale(y="independent").to_dict()

    print("server side, one price-chart update after 30 steps (ms):")
    print(f"  panel data (price table, stress) {_timed(lambda: (live.data.price_table(), live.data.stress_events())):7.1f}")
    print(f"  plain dict (the dashboard)       {_timed(lambda: charts.price_figure(prices, stress, 'widget')):7.1f}")
    print(f"  plotly go.Figure from the dict   {_timed(lambda: go.Figure(as_dict)):7.1f}")
    if alt is not None:
        print(f"  altair chart -> spec             {_timed(altair_spec):7.1f}")
    live.end()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="first-paint measurements per tree (alternating)")
    parser.add_argument("--steps", type=int, default=10, help="Step clicks timed (0: none)")
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the baseline tree")
    args = parser.parse_args()
    first_paint(args.rounds, args.baseline)
    if args.steps:
        browser_steps(args.steps)
        chart_builders()


if __name__ == "__main__":
    main()
