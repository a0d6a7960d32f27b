"""Plots of a recording: price path against the competitive equilibrium, supply and demand,
the message network, surplus by agent.

Each function returns a matplotlib `Figure` drawn on the Agg canvas and never shows it. Figures are
built with the object-oriented API (no pyplot): nothing global changes (backend, open-figure
registry), so the functions are safe in scripts, tests, servers and notebooks alike. matplotlib
is imported inside the functions, so importing this module stays cheap.

Names come from the recording (goods, agents, roles, the scenario, event descriptions): each goes
through :func:`safe_label` (``$`` escaped, so mathtext never parses it; cut to 40 characters, so a
huge name cannot stall the layout), and figures are built with ``text.usetex`` off.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from mesa_llm.analysis.loader import Recording
from mesa_llm.analysis.market_metrics import (
    competitive_equilibrium_by_step,
    efficiency_over_time,
    supply_and_demand,
)
from mesa_llm.analysis.units import finite
from mesa_llm.economics import shifted_units

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "MAX_LABEL_CHARS",
    "ROLE_COLORS",
    "fundamental_paths",
    "plot_efficiency_over_time",
    "plot_message_network",
    "plot_price_path",
    "plot_supply_demand",
    "plot_surplus_by_agent",
    "plot_volume",
    "safe_label",
    "scheduled_events",
]

#: colours of the roles in every plot (others cycle through the extra colours)
ROLE_COLORS: dict[str, str] = {
    "buyer": "#1f77b4",
    "seller": "#ff7f0e",
    "trader": "#2ca02c",
    "market_maker": "#9467bd",
    "speculator": "#d62728",
    "mediator": "#8c564b",
    "regulator": "#7f7f7f",
}
_EXTRA_COLORS = ("#17becf", "#bcbd22", "#e377c2", "#aec7e8", "#ffbb78", "#98df8a")
_MAX_GOODS = 6
_CURVE_LABELS = {
    "induced values": ("demand (unit values)", "supply (unit costs)"),
    "reservation prices": (
        "demand (buyers' reservation prices)",
        "supply (sellers' reservation prices)",
    ),
    "limit orders": ("demand (buy limit prices)", "supply (sell limit prices)"),
}


#: longest name drawn in a plot; a longer one is cut and ends in an ellipsis
MAX_LABEL_CHARS = 40
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_Plot = TypeVar("_Plot", bound=Callable[..., Any])


def safe_label(value: object, limit: int = MAX_LABEL_CHARS) -> str:
    """``value`` as plain text for a plot: control characters as spaces, cut to ``limit``
    characters (ending in "…"), and every ``$`` escaped so that matplotlib never reads mathtext."""
    text = _CONTROL.sub(" ", str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", "\\$")


def plain_text_rc() -> AbstractContextManager[None]:
    """The settings every figure of this module is built (and the reports saved) with: no TeX
    whatever the user's rc, mathtext only where a text asks for it (:func:`safe_label` escapes
    every ``$`` of a name)."""
    import matplotlib

    return matplotlib.rc_context({"text.usetex": False, "text.parse_math": True})


def plain_text(plot: _Plot) -> _Plot:
    """Build the figure of ``plot`` within :func:`plain_text_rc`."""

    @functools.wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with plain_text_rc():
            return plot(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")


def _role_colors(roles: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    extra = iter(_EXTRA_COLORS * 4)
    for role in roles:
        if role not in out:
            out[role] = ROLE_COLORS.get(role) or next(extra, "#333333")
    return out


def _price_of(terms: Any) -> float | None:
    value = terms.get("price") if isinstance(terms, Mapping) else None
    if value is None:
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return price if math.isfinite(price) else None


# ----------------------------------------------------------------------------- events, fundamentals


def scheduled_events(rec: Recording) -> list[tuple[int, str]]:
    """(step, label) of every ``scheduled_event`` (timeline shocks, rule changes, stress events),
    each event once: the event's description, else its type, with its span (steps a-b) when it
    lasts several steps. The record of a stress event's end (``phase: end``) is not another event."""
    table = rec.table("scheduled_event")
    out = []
    if len(table) and "event" in table:
        phases = table["phase"] if "phase" in table else [None] * len(table)
        for step, event, phase in zip(table["step"], table["event"], phases, strict=True):
            if not isinstance(event, Mapping) or phase == "end":
                continue
            label = str(event.get("description") or event.get("type") or "event")
            duration = event.get("duration")
            span = ""
            if isinstance(duration, int) and not isinstance(duration, bool) and duration > 1:
                span = f" (steps {int(step)}-{int(step) + duration - 1})"  # kept whole: a long label is cut before it
            out.append((int(step), safe_label(label, MAX_LABEL_CHARS - len(span)) + span))
    return out


def _mark_events(ax: Axes, events: list[tuple[int, str]], *, labels: bool = True) -> None:
    """A vertical line per scheduled event, labelled at the top of the panel."""
    for i, (step, label) in enumerate(events):
        ax.axvline(step, color="#d62728", linestyle="-.", linewidth=1.0, alpha=0.6, zorder=2)
        if labels:
            ax.annotate(label, xy=(step, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -10 - 11 * (i % 3)),
                        textcoords="offset points", fontsize=7, color="#a01c1c", va="top")  # fmt: skip


def _recorded_fundamentals(rec: Recording) -> dict[str, pd.Series]:
    """Per good: the clearing records' ``fundamental`` by step (empty for older recordings)."""
    clearings = rec.table("clearing")
    if not len(clearings) or "fundamental" not in clearings:
        return {}
    out = {}
    for good, rows in clearings.groupby("good"):
        values = pd.to_numeric(rows["fundamental"], errors="coerce")
        series = pd.Series(values.to_numpy(dtype=float), index=rows["step"].to_numpy()).dropna()
        if len(series):
            out[str(good)] = series[~series.index.duplicated(keep="last")]
    return out


def fundamental_paths(rec: Recording) -> dict[str, pd.Series]:
    """Per good: the mean of the agents' fundamental values (currency units) by step, as the
    clearing records give it, else (older recordings) from the header and the ``shift_private``
    events on ``fundamental`` (scale, then add, as the model does).
    Goods no agent has a fundamental for are left out."""
    base: dict[str, dict[int, float]] = {}
    population: dict[int, Any] = {}
    for agent in rec.header.get("agents") or []:
        agent_id = agent.get("agent_id")
        if not isinstance(agent_id, int):
            continue
        population[agent_id] = agent.get("population")
        for good, private in (agent.get("private") or {}).items():
            value = private.get("fundamental") if isinstance(private, Mapping) else None
            if isinstance(value, int | float) and math.isfinite(value):
                base.setdefault(good, {})[agent_id] = float(value)
    if not base:
        return {}
    recorded = _recorded_fundamentals(rec)
    if recorded:  # recordings since the clearing record carries it (exact under stress events)
        return recorded
    final = max(rec.final_step, 1)
    shocks = rec.table("scheduled_event")
    changes: list[tuple[int, Mapping[str, Any]]] = []
    if len(shocks) and "event" in shocks:
        changes = [(int(s), e) for s, e in zip(shocks["step"], shocks["event"], strict=True)
                   if isinstance(e, Mapping) and e.get("type") == "shift_private" and e.get("field") == "fundamental"]  # fmt: skip
    out = {}
    for good, values in base.items():
        current = dict(values)
        path = []
        for step in range(1, final + 1):
            for event in [e for at, e in changes if at == step]:
                if event.get("good") != good:
                    continue
                targets = event.get("populations")
                scale = finite(event.get("scale"))
                scale = 1.0 if scale is None else scale
                add = finite(event.get("add")) or 0.0
                for agent_id in current:
                    if not targets or population.get(agent_id) in targets:
                        current[agent_id] = shifted_units(current[agent_id], scale, add, rec.tick_size)
            path.append(float(np.mean(list(current.values()))))
        out[good] = pd.Series(path, index=np.arange(1, final + 1))
    return out


# ----------------------------------------------------------------------------- volume, efficiency


@plain_text
def plot_volume(rec: Recording) -> Figure:
    """Units traded per step as bars (stacked by good), scheduled events marked."""
    trades = rec.trades
    fig = _figure(10, 2.8)
    ax = fig.add_subplot()
    if trades.empty:
        _note(ax, "no trades")
        return fig
    qty = pd.to_numeric(trades["quantity"], errors="coerce").fillna(0)
    table = qty.groupby([trades["step"], trades["good"]]).sum().unstack(fill_value=0)
    steps = np.arange(1, max(rec.final_step, int(table.index.max())) + 1)
    table = table.reindex(steps, fill_value=0)
    bottom = np.zeros(len(steps))
    colors = iter(("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860") * 4)
    for good in table.columns[:_MAX_GOODS]:
        heights = table[good].to_numpy(dtype=float)
        ax.bar(steps, heights, bottom=bottom, width=0.85, color=next(colors), label=safe_label(good))
        bottom += heights
    _mark_events(ax, scheduled_events(rec), labels=False)
    ax.set_xlabel("step")
    ax.set_ylabel("units traded")
    ax.grid(True, axis="y", alpha=0.3)
    if len(table.columns) > 1:
        ax.legend(loc="best", fontsize=8)
    ax.set_title(f"Volume - {safe_label(rec.scenario or rec.run_id)}", loc="left", fontsize=11)
    return fig


@plain_text
def plot_efficiency_over_time(rec: Recording) -> Figure:
    """Allocative efficiency of the trades so far (%, left axis) and Smith's alpha of the trades so
    far per good (right axis), step by step; scheduled events marked."""
    path = efficiency_over_time(rec)
    fig = _figure(10, 3.0)
    ax = fig.add_subplot()
    if path.empty:
        _note(ax, "no induced values: efficiency is undefined")
        return fig
    steps = path["step"].to_numpy(dtype=float)
    ax.plot(steps, 100 * path["efficiency"].to_numpy(dtype=float), color="#2ca02c", linewidth=2.0,
            drawstyle="steps-mid", label="allocative efficiency")  # fmt: skip
    ax.set_ylim(0, 105)
    ax.set_ylabel("efficiency (%)")
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    alphas = [c for c in path.columns if c.startswith("alpha_")]
    if alphas:
        right = ax.twinx()
        for column, color in zip(alphas, ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b"), strict=False):
            right.plot(steps, path[column].to_numpy(dtype=float), color=color, linestyle="--", linewidth=1.3,
                       label=f"Smith's alpha ({safe_label(column[6:])})")  # fmt: skip
        right.set_ylabel("Smith's alpha")
        right.set_ylim(bottom=0)
        more_h, more_l = right.get_legend_handles_labels()
        handles, labels = handles + more_h, labels + more_l
    _mark_events(ax, scheduled_events(rec), labels=False)
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    ax.set_title(f"Efficiency and convergence - {safe_label(rec.scenario or rec.run_id)}", loc="left", fontsize=11)
    return fig


# ----------------------------------------------------------------------------- price path


@plain_text
def plot_price_path(rec: Recording) -> Figure:
    """Clearing prices per good at the steps where units traded (no line across steps without a
    trade), with the competitive-equilibrium price range of the untraded units at each step
    (shaded) and its midpoint (dashed), the agents' mean fundamental value (dotted) where they have
    one, scheduled and stress events (vertical lines); negotiation offers (thin lines, one per
    session) and agreed prices (crosses) when the run has negotiations.
    One panel per good (at most six)."""
    clearings = rec.clearings
    ce = competitive_equilibrium_by_step(rec)
    offers = rec.offers
    agreements = rec.agreements
    roles = (
        dict(zip(rec.agents["agent_id"], rec.agents["role"], strict=True))
        if len(rec.agents)
        else {}
    )
    goods: list[str] = []
    for frame in (clearings, ce, offers, agreements):
        if "good" in frame and len(frame):
            goods += [
                g
                for g in pd.unique(frame["good"].dropna())
                if isinstance(g, str) and g not in goods
            ]
    fundamentals = fundamental_paths(rec)
    events = scheduled_events(rec)
    with_data = [g for g in goods if _has_prices(g, clearings, ce, offers, agreements)]
    goods = (with_data or goods)[:_MAX_GOODS]
    fig = _figure(10, 3.2 * max(len(goods), 1) + 0.6)
    if not goods:
        ax = fig.add_subplot()
        _note(ax, "no prices recorded")
        ax.set_xlabel("step")
        return fig
    axes = fig.subplots(len(goods), 1, sharex=True, squeeze=False)[:, 0]
    for ax, good in zip(axes, goods, strict=True):
        band = ce[ce["good"] == good].sort_values("step")
        if band["ce_price"].notna().any():
            steps = band["step"].to_numpy(dtype=float)
            ax.fill_between(
                steps,
                band["ce_price_low"].to_numpy(dtype=float),
                band["ce_price_high"].to_numpy(dtype=float),
                step="mid",
                color="#2ca02c",
                alpha=0.18,
                label="CE price range (untraded units)",
            )
            ax.plot(steps, band["ce_price"].to_numpy(dtype=float), drawstyle="steps-mid",
                    color="#2ca02c", linestyle="--", linewidth=1.2, label="CE price")  # fmt: skip
        if len(offers) and "session_id" in offers:
            # one line per session and proposer: each side's concessions (the negotiation dance)
            mine = offers[offers["good"] == good]
            labelled: set[str] = set()
            for (_, proposer), lane in mine.groupby(["session_id", "proposer"], sort=False):
                points = [
                    (s, p)
                    for s, p in zip(lane["step"], map(_price_of, lane["terms"]), strict=True)
                    if p is not None
                ]
                if not points:
                    continue
                role = str(roles.get(proposer, "other"))
                side = role if role in ("buyer", "seller", "mediator") else "other party"
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, color=ROLE_COLORS.get(side, "#9467bd"), alpha=0.45, linewidth=1.0,
                        marker=".", markersize=4 if len(points) > 1 else 10,  # a lone (sealed) bid must show
                        label=None if side in labelled else f"{side} offers")  # fmt: skip
                labelled.add(side)
        c = (
            clearings[(clearings["good"] == good)].sort_values("step")
            if len(clearings)
            else clearings
        )
        c = c[c["price"].notna()] if len(c) else c
        if len(c) and "volume" in c:
            c = c[pd.to_numeric(c["volume"], errors="coerce").fillna(0) > 0]  # a price only where units traded
        if len(c):
            # steps without a trade are gaps (NaN), so the line never bridges them
            steps = np.arange(int(c["step"].min()), int(c["step"].max()) + 1)
            price = c.groupby("step")["price"].last().reindex(steps).to_numpy(dtype=float)
            ax.plot(steps, price, color="#222222", marker="o", markersize=3.5, linewidth=1.5,
                    label="clearing price (steps with trades)", zorder=4)  # fmt: skip
        fundamental = fundamentals.get(good)
        if fundamental is not None:
            ax.plot(fundamental.index.to_numpy(dtype=float), fundamental.to_numpy(dtype=float), drawstyle="steps-post",
                    color="#8c564b", linestyle=":", linewidth=1.6, label="fundamental (mean)", zorder=3)  # fmt: skip
        _mark_events(ax, events)
        _auction_values(ax, rec, good)
        if len(agreements):
            a = agreements[agreements["good"] == good]
            agreed = [(s, _price_of(t)) for s, t in zip(a["step"], a["terms"], strict=True)]
            points = [(s, p) for s, p in agreed if p is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.scatter(
                    xs, ys, marker="X", s=60, color="#d62728", zorder=5, label="agreed price"
                )
        ax.set_title(safe_label(good), loc="left", fontsize=11)
        ax.set_ylabel("price")
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend(loc="best", fontsize=8, framealpha=0.85)
        else:
            _note(ax, "no prices recorded for this good")
    axes[-1].set_xlabel("step")
    _whole_steps(axes[-1])
    fig.suptitle(f"Prices - {safe_label(rec.scenario or rec.run_id)}", fontsize=12)
    return fig


def _whole_steps(ax: Axes) -> None:
    """Steps are whole numbers: integer ticks, and at least one step either side of data that
    lies on a single step (a sealed-bid auction), not a 0.96-1.04 axis."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    low, high = ax.get_xlim()
    if high - low < 2:
        middle = round((low + high) / 2)
        ax.set_xlim(middle - 1, middle + 1)


def _auction_values(ax: Axes, rec: Recording, good: str) -> None:
    """The bidders' private values of an auctioned good at the step its auction closed (short
    bars), so the bids and the price are read against them."""
    from mesa_llm.analysis.auctions import auction_results

    shown = False
    for result in auction_results(rec):
        if result["good"] != good or result["closed_step"] is None:
            continue
        values = [b["value"] for b in result["bids"] if b["value"] is not None]
        if values:
            ax.scatter([result["closed_step"]] * len(values), values, marker="_", s=220, linewidths=2,
                       color="#1f77b4", zorder=4, label=None if shown else "bidders' values")  # fmt: skip
            shown = True


def _has_prices(good: str, *frames: pd.DataFrame) -> bool:
    clearings, ce, offers, agreements = frames
    if len(clearings) and clearings.loc[clearings["good"] == good, "price"].notna().any():
        return True
    if len(ce) and ce.loc[ce["good"] == good, "ce_price"].notna().any():
        return True
    return any(
        len(frame) and "terms" in frame
        and any(_price_of(t) is not None for t in frame.loc[frame["good"] == good, "terms"])
        for frame in (offers, agreements)
    )  # fmt: skip


# ----------------------------------------------------------------------------- supply and demand


@plain_text
def plot_supply_demand(rec: Recording, step: int | None = None, good: str | None = None) -> Figure:
    """Demand (unit values, high to low) and supply (unit costs, low to high) as step functions of
    the units still untraded at the start of `step` (default: the first step), with the
    competitive equilibrium (quantity, price range) and that step's clearing price.

    Without induced values, the reservation prices of single-issue price negotiations are drawn
    instead, and without those the limit orders of the step (see
    `mesa_llm.analysis.metrics.supply_and_demand`)."""
    sd = supply_and_demand(rec, step=step, good=good)
    fig = _figure(8, 5.2)
    ax = fig.add_subplot()
    values, costs = sd["values"], sd["costs"]
    if not values and not costs:
        _note(ax, "no induced values, reservation prices or orders to draw supply and demand from")
        ax.set_xlabel("units")
        ax.set_ylabel("price")
        return fig
    demand, supply = _CURVE_LABELS.get(sd["source"], ("demand", "supply"))
    if values:
        v = np.asarray(values, dtype=float)
        ax.step(np.arange(len(v) + 1), np.r_[v, v[-1]], where="post", color="#1f77b4",
                linewidth=2, label=demand)  # fmt: skip
    if costs:
        c = np.asarray(costs, dtype=float)
        ax.step(np.arange(len(c) + 1), np.r_[c, c[-1]], where="post", color="#ff7f0e",
                linewidth=2, label=supply)  # fmt: skip
    q, price = sd["ce_quantity"], sd["ce_price"]
    if q and price is not None:
        low, high = sd["ce_price_low"], sd["ce_price_high"]
        ax.vlines(q, low, high, color="#2ca02c", linewidth=5, alpha=0.5, label="CE price range")
        ax.scatter([q], [price], color="#2ca02c", s=60, zorder=5,
                   label=f"CE: Q*={q}, P*={price:,.2f}")  # fmt: skip
        ax.axhline(price, color="#2ca02c", linestyle=":", linewidth=1)
    clearings = rec.clearings
    if len(clearings) and sd["good"] is not None:
        at = clearings[(clearings["good"] == sd["good"]) & (clearings["step"] == sd["step"])]
        p = at["price"].dropna()
        if len(p):
            ax.axhline(float(p.iloc[0]), color="#d62728", linestyle="--", linewidth=1,
                       label=f"clearing price at step {sd['step']}: {float(p.iloc[0]):,.2f}")  # fmt: skip
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(0, max(len(values), len(costs), 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("units")
    ax.set_ylabel("price")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    if sd["source"] == "limit orders":
        title = f"Supply and demand of {safe_label(sd['good'])}: the limit orders of step {sd['step']}"
    else:
        what = "" if sd["source"] == "induced values" else f" ({sd['source']})"
        title = f"Supply and demand of {safe_label(sd['good'])} at the start of step {sd['step']}{what}"
    ax.set_title(title, fontsize=11)
    return fig


# ----------------------------------------------------------------------------- message network


@plain_text
def plot_message_network(rec: Recording) -> Figure:
    """Who messaged whom: agents on a circle (coloured by role), an arrow per sender -> recipient
    pair with its width growing with the number of direct messages, a ring around each agent that
    broadcast (with the count), and negotiation offers as dashed arrows."""
    agents = rec.agents
    messages = rec.messages
    offers = rec.offers
    ids: list[int] = [int(a) for a in agents["agent_id"].dropna()] if len(agents) else []
    names = dict(zip(agents["agent_id"], agents["name"], strict=True)) if len(agents) else {}
    roles = dict(zip(agents["agent_id"], agents["role"], strict=True)) if len(agents) else {}
    direct: Counter[tuple[int, int]] = Counter()
    broadcasts: Counter[int] = Counter()
    for sender, recipients in zip(
        messages.get("sender_id", []), messages.get("recipient_ids", []), strict=True
    ):
        if pd.isna(sender):
            continue
        if isinstance(recipients, list) and recipients:
            for r in recipients:
                direct[(int(sender), int(r))] += 1
        else:
            broadcasts[int(sender)] += 1
    offered: Counter[tuple[int, int]] = Counter()
    if len(offers):
        for proposer, to, parties in zip(
            offers.get("proposer", [None] * len(offers)),
            offers.get("to", [None] * len(offers)),
            offers.get("parties", [None] * len(offers)),
            strict=True,
        ):
            if proposer is None or pd.isna(proposer):
                continue
            targets = [int(to)] if to is not None and not pd.isna(to) else [
                int(p) for p in (parties or []) if int(p) != int(proposer)
            ]  # fmt: skip
            for t in targets:
                offered[(int(proposer), t)] += 1
    for pair in [*direct, *offered]:
        for agent_id in pair:
            if agent_id not in ids:
                ids.append(agent_id)
    ids.extend(x for x in broadcasts if x not in ids)
    n = len(ids)
    quiet = not direct and not broadcasts and not offered
    size = 5.0 if quiet else 7.5 if n <= 20 else 9.5
    fig = _figure(size + 2.5, size)
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.axis("off")
    if n == 0:
        _note(ax, "no agents")
        return fig
    angle = np.pi / 2 - 2 * np.pi * np.arange(n) / n
    xy = {agent: (float(np.cos(t)), float(np.sin(t))) for agent, t in zip(ids, angle, strict=True)}
    colors = _role_colors([str(roles.get(a, "?")) for a in ids])

    def arrows(counts: Counter[tuple[int, int]], color: str, style: str) -> None:
        top = max(counts.values(), default=1)
        for (src, dst), count in counts.items():
            if src == dst:
                continue
            ax.annotate(
                "",
                xy=xy[dst],
                xytext=xy[src],
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": color,
                    "lw": 0.8 + 4.0 * count / top,
                    "linestyle": style,
                    "alpha": 0.7,
                    "shrinkA": 9,
                    "shrinkB": 9,
                    "connectionstyle": "arc3,rad=0.12",
                },
            )

    arrows(offered, "#9467bd", "--")
    arrows(direct, "#1f77b4", "-")
    xs = [xy[a][0] for a in ids]
    ys = [xy[a][1] for a in ids]
    node_colors = [colors[str(roles.get(a, "?"))] for a in ids]
    ax.scatter(
        xs,
        ys,
        s=260 if n <= 30 else 120,
        c=node_colors,
        edgecolors="white",
        linewidths=1.5,
        zorder=3,
    )
    if broadcasts:
        top = max(broadcasts.values())
        bx = [xy[a][0] for a in broadcasts]
        by = [xy[a][1] for a in broadcasts]
        rings = [500 + 1500 * c / top for c in broadcasts.values()]
        ax.scatter(
            bx, by, s=rings, facecolors="none", edgecolors="#d62728", linewidths=1.5, zorder=2
        )
    label_names = n <= 24
    for agent in ids:
        x, y = xy[agent]
        text = safe_label(names.get(agent, agent)) if label_names else str(agent)
        if broadcasts.get(agent):
            text += f"\n({broadcasts[agent]} broadcast)"
        ax.text(1.2 * x, 1.2 * y, text, ha="center", va="center", fontsize=8 if label_names else 7)
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(-1.5, 1.5)
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", linestyle="", color=color, markersize=9, label=safe_label(role))
        for role, color in colors.items()
    ]
    handles.append(
        Line2D([], [], color="#1f77b4", lw=2, label=f"direct messages ({sum(direct.values())})")
    )
    if offered:
        handles.append(Line2D([], [], color="#9467bd", lw=2, linestyle="--",
                              label=f"negotiation offers ({sum(offered.values())})"))  # fmt: skip
    handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none",
                          markeredgecolor="#d62728", markersize=12,
                          label=f"broadcasts ({sum(broadcasts.values())})"))  # fmt: skip
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False
    )
    title = "Message network"
    if quiet:
        title += " - no messages or offers recorded"
    ax.set_title(title, fontsize=12)
    return fig


# ----------------------------------------------------------------------------- surplus


@plain_text
def plot_surplus_by_agent(rec: Recording) -> Figure:
    """Each agent's final welfare in money (`mesa_llm.analysis.welfare`: the same figures as the
    report's table and the dashboard) as a bar coloured by side: its surplus against its own
    private values (induced values and costs, reservation prices, an auction's reserve) where it
    has them; otherwise, when no agent has any, its P&L with holdings marked at the last price."""
    from mesa_llm.analysis.welfare import welfare_table

    table = welfare_table(rec)
    with_values = table[pd.to_numeric(table["surplus"], errors="coerce").notna()] if len(table) else table
    use_surplus = len(with_values) > 0
    shown = with_values if use_surplus else table
    n = len(shown)
    fig = _figure(min(max(8.0, 0.32 * n + 3), 18.0), 4.8)
    ax = fig.add_subplot()
    if n == 0:
        _note(ax, "no agent states recorded")
        return fig
    shown = shown.sort_values("agent_id")
    heights = pd.to_numeric(shown["surplus" if use_surplus else "marked_pnl"], errors="coerce").to_numpy(dtype=float)
    side_list = shown["side"].tolist()
    colors = {"buyers": ROLE_COLORS.get("buyer", "#1f77b4"), "sellers": ROLE_COLORS.get("seller", "#ff7f0e"),
              "others": "#9467bd"}  # fmt: skip
    x = np.arange(n)
    ax.bar(x, heights, color=[colors[s] for s in side_list], edgecolor="white", linewidth=0.5)
    ax.axhline(0, color="#333333", linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([safe_label(name) for name in shown["name"]], rotation=60, ha="right", fontsize=8 if n <= 30 else 6)
    ax.set_ylabel("surplus against own values (money)" if use_surplus else "P&L, holdings at the last price (money)")
    ax.grid(True, axis="y", alpha=0.3)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=colors[s], label=s) for s in dict.fromkeys(side_list)], fontsize=8, loc="best")
    what = "surplus against own values" if use_surplus else "P&L marked at the last price"
    ax.set_title(f"Final {what} by agent - {safe_label(rec.scenario or rec.run_id)}", fontsize=12)
    return fig

