"""The posted-price market's panels in the HTML report (``mesa-llm analyze --html``): prices against the
Bertrand-Nash and monopoly prices (logit), the adoption curve against the Bass recursion (Bass).
Read from the recording only."""

from __future__ import annotations

from typing import Any

import numpy as np

from mesa_llm_consumer_markets.economics import bass_recursion
from mesa_llm_consumer_markets.metrics import adoption, adoption_curve, outcomes, pricing, setup_of

_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def price_figure(recording: Any) -> Any:
    """Each firm's posted price per step, with the one-shot Nash and monopoly prices as lines."""
    setup = setup_of(recording) or {}
    table = outcomes(recording)
    fig = _figure(10, 3.4)
    ax = fig.add_subplot()
    steps = table["step"].to_numpy(dtype=float)
    prices = np.asarray([list(v) for v in table["prices"]], dtype=float) if len(table) else np.zeros((0, 0))
    for k, firm in enumerate(setup.get("firms") or []):
        if prices.size:
            ax.plot(steps, prices[:, k], marker="o", markersize=3, lw=1.4, color=_COLORS[k % len(_COLORS)], label=f"firm {firm}")
    for label, key, style in (("Bertrand-Nash", "nash_prices", "--"), ("monopoly", "monopoly_prices", ":")):
        for value in sorted({round(float(v), 6) for v in setup.get(key) or []}):
            ax.axhline(value, color="#333333", ls=style, lw=1.2)
            ax.annotate(f"{label} {value:.4g}", (0.005, value), xycoords=("axes fraction", "data"), fontsize=8,
                        va="bottom", color="#333333")  # fmt: skip
    ax.set_xlabel("step")
    ax.set_ylabel("price")
    ax.grid(True, alpha=0.3)
    if setup.get("firms"):
        ax.legend(loc="best", fontsize=8)
    ax.set_title("Posted prices", loc="left", fontsize=11)
    return fig


def adoption_figure(recording: Any) -> Any:
    """Cumulative adopters against the discrete Bass recursion (with the recorded innovation per
    step), and new adopters per step as bars."""
    curve = adoption_curve(recording)
    assert curve is not None
    cumulative, market = curve
    setup = setup_of(recording) or {}
    table = outcomes(recording)
    fig = _figure(10, 3.4)
    ax = fig.add_subplot()
    steps = np.arange(len(cumulative))
    if len(cumulative) > 1:
        ax.bar(steps[1:], np.diff(cumulative), width=0.8, color="#c7d3e8", label="new adopters")
    ax.plot(steps, cumulative, marker="o", markersize=3, color=_COLORS[0], label="adopters")
    bass = setup.get("bass") or {}
    if len(table) and bass:
        innovation = table["innovation"].to_numpy(dtype=float)
        expected = bass_recursion(innovation, float(bass["q"]), market, len(table))
        ax.plot(steps, expected, ls="--", color="#333333", label=f"Bass recursion (p={bass['p']:g}, q={bass['q']:g})")
    ax.set_xlabel("step")
    ax.set_ylabel("consumers")
    ax.set_ylim(0, market * 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Adoption", loc="left", fontsize=11)
    return fig


def figures(recording: Any) -> list[tuple[str, str, Any]]:
    """The panels for a recording of a posted-price market (none for another)."""
    setup = setup_of(recording)
    if setup is None:
        return []
    if setup.get("consumers") == "bass":
        m = adoption(recording)
        fitted = (
            f" Fitted Bass coefficients: p = {m['fitted_p']:.4f}, q = {m['fitted_q']:.4f}."
            if m.get("fitted_p") is not None and m.get("fitted_q") is not None else ""
        )  # fmt: skip
        caption = (
            f"Consumers who adopted by each step (of {m['consumers']:,}; final adoption rate "
            f"{100 * float(m['final_adoption_rate'] or 0):.1f}%, peak of new adoptions at step {m['peak_step']}) against the discrete Bass "
            "recursion N_t = N_t-1 + (p_t + q N_t-1 / M)(M - N_t-1) with the innovation p_t recorded each step "
            f"(advertising included).{fitted}"
        )
        return [("Adoption curve", caption, adoption_figure(recording))]
    m = pricing(recording)
    gain = m.get("profit_gain")
    caption = (
        "Each firm's posted price per step against the one-shot Bertrand-Nash prices (dashed) and the joint-profit "
        "(monopoly) prices (dotted) of the recorded logit demand."
        + (f" Profit gain (pi - pi_N)/(pi_M - pi_N) over the run: {gain:.3f}." if isinstance(gain, float) else "")
    )
    return [("Prices against Nash and monopoly", caption, price_figure(recording))]


__all__ = ["adoption_figure", "figures", "price_figure"]
