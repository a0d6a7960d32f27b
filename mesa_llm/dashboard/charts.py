"""Plotly figures of the panels' data (`mesa_llm.dashboard.data`) as plain dicts: pure, no Solara.

Plain dicts, not ``plotly.graph_objects``: building a validated figure object took ~190 ms for
the price chart here, a dict takes well under a millisecond, and the page then only sends what
changed (`mesa_llm.dashboard.app.PlotlyChart`). Plotly, not matplotlib: the browser redraws the
figure itself; a matplotlib frame is an image rendered on the server (~1 s in Mesa's reports).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

Figure = dict[str, Any]

_LAYOUT: dict[str, Any] = {
    "margin": {"l": 50, "r": 50, "t": 30, "b": 40},
    "height": 300,
    "template": "plotly_white",
    "legend": {"orientation": "h", "y": -0.25},
    "uirevision": "keep",  # zoom and hidden traces survive a step's update
}


def _values(series: pd.Series) -> list[Any]:
    # JSON-ready: NaN becomes None (a gap in a line)
    return [None if isinstance(v, float) and math.isnan(v) else v for v in series.tolist()]


def price_figure(prices: pd.DataFrame, stress: pd.DataFrame, good: str) -> Figure:
    """Clearing price of ``good`` per step with the competitive-equilibrium band, the mean
    fundamental, volume bars (right axis) and a vertical line per stress event (dashed while
    pending), labelled once with its span, which is shaded."""
    rows = prices[prices["good"] == good]
    steps = rows["step"].tolist()
    has_ce = bool(rows["ce_low"].notna().any())
    has_fundamental = bool(rows["fundamental"].notna().any())
    # the band and the fundamental as steps centred on each step (a shock moves them at its step)
    edges = [s - 0.5 for s in steps] + ([steps[-1] + 0.5] if steps else [])

    def stepped(column: str, shown: bool) -> list[Any]:
        values = _values(rows[column]) if shown else []
        return values + values[-1:]

    data: list[dict[str, Any]] = [
        {"type": "scatter", "name": "CE band (high)", "x": edges, "y": stepped("ce_high", has_ce),
         "mode": "lines", "line": {"width": 0, "shape": "hv"}, "showlegend": False, "hoverinfo": "skip"},
        {"type": "scatter", "name": "CE price band", "x": edges, "y": stepped("ce_low", has_ce),
         "mode": "lines", "line": {"width": 0, "shape": "hv"}, "fill": "tonexty", "fillcolor": "rgba(46,160,67,0.2)",
         "showlegend": has_ce},
        {"type": "scatter", "name": "fundamental", "x": edges, "y": stepped("fundamental", has_fundamental),
         "mode": "lines", "line": {"dash": "dot", "color": "#8250df", "shape": "hv"}, "showlegend": has_fundamental},
        {"type": "bar", "name": "volume", "x": steps, "y": rows["volume"].tolist(), "yaxis": "y2",
         "marker": {"color": "rgba(120,120,120,0.35)"}},
        {"type": "scatter", "name": "clearing price", "x": steps, "y": _values(rows["price"]),
         "mode": "lines+markers", "line": {"color": "#0969da"}},
    ]  # fmt: skip
    shapes, annotations = [], []
    labels: dict[Any, list[str]] = {}
    for event in stress.to_dict("records"):
        span = f" ({event['span']})" if str(event.get("span") or "").startswith("steps") else ""
        labels.setdefault(event["step"], []).append(str(event["type"]) + span + (" (next step)" if event["pending"] else ""))
    for event in stress.to_dict("records"):
        end = event.get("end_step")
        if isinstance(end, int | float) and end > event["step"]:  # the span the event lasts, shaded
            shapes.append(
                {"type": "rect", "x0": event["step"] - 0.5, "x1": end + 0.5, "yref": "paper", "y0": 0, "y1": 1,
                 "fillcolor": "rgba(207,34,46,0.08)", "line": {"width": 0}}
            )  # fmt: skip
    for event in stress.drop_duplicates("step").to_dict("records"):
        pending = bool(event["pending"])
        shapes.append(
            {"type": "line", "x0": event["step"] - 0.5, "x1": event["step"] - 0.5, "yref": "paper", "y0": 0, "y1": 1,
             "line": {"color": "#cf222e", "dash": "dash" if pending else "solid", "width": 2}}
        )  # fmt: skip
        annotations.append(
            {"x": event["step"] - 0.5, "y": 1, "yref": "paper", "text": ", ".join(labels[event["step"]]),
             "showarrow": False, "xanchor": "left", "font": {"color": "#cf222e", "size": 11}}
        )  # fmt: skip
    layout = {
        **_LAYOUT,
        "title": {"text": f"{good}: price per step", "font": {"size": 14}},
        "xaxis": {"title": {"text": "step"}},
        "yaxis": {"title": {"text": "price"}},
        "yaxis2": {"title": {"text": "volume"}, "overlaying": "y", "side": "right", "showgrid": False, "rangemode": "tozero",
                   "tick0": 0, "dtick": max(1, math.ceil(float(rows["volume"].max() or 0) / 4)) if len(rows) else 1},
        "shapes": shapes,
        "annotations": annotations,
    }
    return {"data": data, "layout": layout}


def supply_demand_figure(curves: dict[str, Any] | None, good: str) -> Figure:
    """The last clearing's demand and supply step curves and its price (empty curves before
    the first clearing)."""
    if curves is None:
        empty = pd.DataFrame({"quantity": [], "price": []})
        curves = {"step": None, "price": None, "demand": empty, "supply": empty}
    price = curves.get("price")
    data = [
        {"type": "scatter", "name": "demand (bids)", "x": curves["demand"]["quantity"].tolist(),
         "y": curves["demand"]["price"].tolist(), "mode": "lines", "line": {"color": "#0969da"}},
        {"type": "scatter", "name": "supply (asks)", "x": curves["supply"]["quantity"].tolist(),
         "y": curves["supply"]["price"].tolist(), "mode": "lines", "line": {"color": "#cf222e"}},
    ]  # fmt: skip
    shapes = (
        [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": price, "y1": price, "line": {"dash": "dot", "color": "#555"}}]
        if price is not None
        else []
    )
    layout = {
        **_LAYOUT,
        "title": {"text": _sd_title(good, curves["step"], price), "font": {"size": 14}},
        "xaxis": {"title": {"text": "cumulative quantity"}},
        "yaxis": {"title": {"text": "limit price"}},
        "shapes": shapes,
    }
    return {"data": data, "layout": layout}


def _sd_title(good: str, step: int | None, price: float | None) -> str:
    if step is None:
        return f"{good}: no clearing yet"
    return f"{good}: orders at step {step}" + (f", cleared at {price:g}" if price is not None else ", no trade")


def offers_figure(offers: pd.DataFrame, session_id: str) -> Figure:
    """Each issue's offered value over rounds, one line per proposer and issue, placed in the
    issue's range (0 = low, 1 = high) so issues of different units share an axis; hover shows
    the value."""
    data = [
        {"type": "scatter", "name": f"{proposer}: {issue}", "x": rows["round"].tolist(), "y": _values(rows["scaled"]),
         "text": [f"{issue} = {v:g}" for v in rows["value"]], "mode": "lines+markers"}
        for (proposer, issue), rows in offers.groupby(["proposer", "issue"], sort=False)
    ]  # fmt: skip
    layout = {
        **_LAYOUT,
        "title": {"text": f"{session_id}: offers over rounds", "font": {"size": 14}},
        "xaxis": {"title": {"text": "round"}},
        "yaxis": {"title": {"text": "place in the issue's range"}, "range": [-0.05, 1.05]},
    }
    return {"data": data, "layout": layout}


def utility_space_figure(space: dict[str, Any], session_id: str) -> Figure:
    """Outcomes in the parties' utility space with the Pareto frontier, Nash point, offers and
    agreement. All WebGL traces: a WebGL layer draws above SVG traces, so mixing them would hide
    the offers behind a large outcome grid."""
    outcomes = space["outcomes"]
    data: list[dict[str, Any]] = [
        {"type": "scattergl", "name": "outcomes", "x": outcomes["x"].tolist(), "y": outcomes["y"].tolist(), "mode": "markers",
         "marker": {"size": 3, "color": "#d0d7de"}},
        {"type": "scattergl", "name": "Pareto frontier", "x": space["pareto"]["x"].tolist(), "y": space["pareto"]["y"].tolist(),
         "mode": "lines+markers", "line": {"color": "#1a7f37"}},
    ]  # fmt: skip
    for proposer, rows in space["offers"].groupby("proposer", sort=False):
        data.append({"type": "scattergl", "name": f"offers by {proposer}", "x": rows["x"].tolist(), "y": rows["y"].tolist(),
                     "text": [f"round {r}" for r in rows["round"]], "mode": "markers", "marker": {"size": 7}})  # fmt: skip
    if space["nash"] is not None:
        data.append({"type": "scattergl", "name": "Nash point", "x": [space["nash"][0]], "y": [space["nash"][1]], "mode": "markers",
                     "marker": {"symbol": "star", "size": 14, "color": "#bf8700"}})  # fmt: skip
    if space["agreement"] is not None:
        data.append({"type": "scattergl", "name": "agreement", "x": [space["agreement"][0]], "y": [space["agreement"][1]],
                     "mode": "markers", "marker": {"symbol": "diamond", "size": 13, "color": "#cf222e"}})  # fmt: skip
    layout = {
        **_LAYOUT,
        "title": {"text": f"{session_id}: utility space", "font": {"size": 14}},
        "xaxis": {"title": {"text": space["x_label"]}, "range": [-0.02, 1.02]},
        "yaxis": {"title": {"text": space["y_label"]}, "range": [-0.02, 1.02]},
    }
    return {"data": data, "layout": layout}
