"""How fast the live dashboard shows a double_auction step, measured in a real browser.

Serves `mesa-llm dashboard double_auction` in a subprocess, drives Debian's Chromium with
Playwright, clicks Step N times and prints, per click, the time until the step counter changed
and until the price chart's SVG changed (median, 90th percentile, max). Before that, it times
on the server side what one update of the price chart costs with each way of building it:
Plotly's validated `go.Figure` (what `solara.FigurePlotly` takes), the plain dict the dashboard
builds, and an Altair chart's spec (what `solara.FigureAltair` sends).

    python benchmarks/bench_dashboard.py [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


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

    live = LiveSession(load_scenario("double_auction"))
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


def browser_steps(steps: int) -> None:
    """Click Step `steps` times; print the time to the counter and chart changes."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "dashboard"))
    from test_dashboard_browser import CHROMIUM, Server

    server = Server("double_auction")
    counter_ms: list[float] = []
    chart_ms: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            for visit in ("first visit", "second visit"):  # the second with the browser's cache
                start = time.perf_counter()
                page.goto(server.url)
                page.wait_for_selector(".step-counter", timeout=60_000)
                counter_s = time.perf_counter() - start
                page.wait_for_selector(".price-chart .js-plotly-plot .main-svg", timeout=60_000)
                chart_s = time.perf_counter() - start
                fcp = page.evaluate(
                    "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"
                )
                fcp_text = f"{fcp / 1000:.2f} s" if fcp is not None else "n/a"
                print(
                    f"{visit}: first contentful paint {fcp_text}, live page (step counter) "
                    f"{counter_s:.2f} s, price chart {chart_s:.2f} s"
                )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    chart_builders()
    browser_steps(args.steps)


if __name__ == "__main__":
    main()
