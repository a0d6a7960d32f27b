"""The live page's first paint: plotly.js (the chart widget's ~5 MB bundle) reaches a page once,
as a cacheable file behind the dashboard's guard, not once per chart over the WebSocket; every
chart draws. `mesa-llm dashboard double_auction` served in a subprocess; the page driven by
Playwright through Debian's Chromium (a missing one fails under MESA_LLM_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.extras import CHROMIUM, missing_reason, required
from tests.support.processes import DashboardProcess

pytestmark = pytest.mark.requires("playwright", "solara", "plotly", extra="browser")

CHARTS = 2  # double_auction's live page: the price chart and the last clearing's supply/demand
BIG_FRAME = 1_000_000  # bytes: a WebSocket frame this large carries the bundle (every other is < 20 KB)


class Dashboard(DashboardProcess):
    """`mesa-llm dashboard double_auction`, with a GET that returns refusals too."""

    def __init__(self) -> None:
        super().__init__("double_auction")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and body of a GET, refusals included."""
        request = urllib.request.Request(self.url.rstrip("/") + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@pytest.fixture(scope="module")
def dashboard() -> Iterator[Dashboard]:
    server = Dashboard()
    yield server
    server.close()


def _bundle_path(dashboard: Dashboard) -> str:
    """The bundle's path as the page names it (its Link: rel=modulepreload header)."""
    _, headers, _ = dashboard.get("/")
    link = headers.get("link", "")
    assert "rel=modulepreload" in link, f"the page names no module to preload: {headers}"
    return link.split(">")[0].lstrip("<")


def _chromium() -> None:
    reason = missing_reason("browser", chromium=True)
    if reason is not None:
        if required("browser"):
            pytest.fail(f"MESA_LLM_REQUIRE_BROWSER=1 but it {reason}", pytrace=False)
        pytest.skip(reason)


# drawn: Plotly laid the figure out with its traces (before the first step they hold no points)
# and drew it, title included
_CHARTS_DRAWN = """n => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  return plots.length >= n && plots.every(gd => gd._fullData && gd._fullData.length > 0 && gd.querySelector('.main-svg .gtitle'));
}"""
_TITLES = "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].map(t => t.textContent)"
_TRACES = "() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => gd.querySelectorAll('.main-svg .trace').length)"


def test_the_live_page_gets_the_chart_bundle_once_and_draws_every_chart(dashboard: Dashboard) -> None:
    _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1600})
        try:
            for visit in ("first", "second"):
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                fetched: list[Any] = []  # responses carrying the bundle (from the server or the cache)
                page.on("response", lambda r, f=fetched: f.append(r) if "plotly-widget." in r.url else None)
                frames: list[int] = []
                page.on("websocket", lambda ws, f=frames: ws.on("framereceived", lambda d: f.append(len(d))))
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                from_cache: list[bool] = []
                cdp.on(
                    "Network.responseReceived",
                    lambda e, c=from_cache: c.append(bool(e["response"].get("fromDiskCache")))
                    if "plotly-widget." in e["response"]["url"]
                    else None,
                )  # fmt: skip
                page.goto(dashboard.url)
                page.wait_for_function(_CHARTS_DRAWN, arg=CHARTS, timeout=120_000, polling=200)
                assert page.locator(".js-plotly-plot").count() == CHARTS
                assert page.evaluate(_TITLES) == ["widget: price per step", "widget: no clearing yet"]
                big = [n for n in frames if n >= BIG_FRAME]
                assert big == [], f"{visit} visit: the bundle came over the WebSocket ({big} bytes)"
                assert len(fetched) == 1, f"{visit} visit: the bundle was fetched {len(fetched)} times"
                assert fetched[0].status == 200
                if visit == "second":
                    assert from_cache == [True], "the second visit fetched the bundle again instead of using the cache"
                if visit == "first":  # a chart created with its first figure still takes updates
                    page.get_by_role("button", name="Step", exact=True).click()
                    page.wait_for_function(
                        "() => [...document.querySelectorAll('.js-plotly-plot')].every(gd => gd.querySelector('.main-svg .trace'))",
                        timeout=60_000,
                    )
                    assert page.locator(".step-counter").inner_text() == "step 1 / 30"
                    assert all(n >= 2 for n in page.evaluate(_TRACES))  # price and volume; demand and supply
                assert errors == []
                page.close()
        finally:
            context.close()
            browser.close()


def test_the_bundle_is_served_immutable_behind_the_guard(dashboard: Dashboard) -> None:
    import plotly

    path = _bundle_path(dashboard)
    assert path.startswith("/_mesa_llm/plotly-widget.") and path.endswith(".js")
    original = (Path(plotly.__file__).parent / "package_data" / "widgetbundle.js").read_bytes()

    status, headers, body = dashboard.get(path, {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-type"].startswith("text/javascript")
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == original
    assert "immutable" in headers["cache-control"] and "max-age=31536000" in headers["cache-control"]
    csp = headers["content-security-policy"]  # the guard's headers, as on every response
    assert "script-src 'self' 'nonce-" in csp and "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY"

    for refused in ("gzip;q=0", "identity"):
        status, headers, body = dashboard.get(path, {"Accept-Encoding": refused})
        assert status == 200 and headers.get("content-encoding") in (None, "identity") and body == original

    host = f"127.0.0.1:{dashboard.port}"
    assert dashboard.get(path, {"Host": f"evil.example:{dashboard.port}"})[0] == 403
    assert dashboard.get(path, {"Host": host, "Origin": "http://evil.example"})[0] == 403
    # another name under the route (an older hash, a path escape) is not found, not the page
    for other in ("/_mesa_llm/plotly-widget.0000000000000000.js", "/_mesa_llm/", "/_mesa_llm/../mesa_llm/__init__.py"):
        status, _, body = dashboard.get(other)
        assert status == 404, other
        assert b"<html" not in body.lower()
