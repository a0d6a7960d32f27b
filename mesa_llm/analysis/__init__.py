"""Analysis of recordings: recordings -> pandas tables, market and negotiation metrics, plots, reports.

This layer reads only the recording format (DESIGN.md): it imports the reader of
`mesa_llm.recording` and the pure `mesa_llm.negotiation` and `mesa_llm.economics` functions, never
the model, the agents or the LLM layer. Importing it is cheap: pandas and numpy are imported with
the first name used from it, matplotlib only inside the plot functions.

    from mesa_llm.analysis import load_recording, summary_metrics, render_html
    rec = load_recording("recordings/double_auction_seed42_....jsonl")
    rec.trades.head(); summary_metrics(rec)["allocative_efficiency"]
    render_html(rec, "report.html")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesa_llm.analysis.loader import (
        LazyContent,
        MultiRecording,
        Recording,
        load_recording,
        load_recordings,
    )
    from mesa_llm.analysis.metrics import (
        agreement_rate,
        allocative_efficiency,
        competitive_equilibrium_by_step,
        gini,
        invalid_action_rate,
        llm_costs,
        pareto_nash_distances,
        price_volatility,
        rounds_to_agreement,
        smiths_alpha,
        summary_metrics,
        surplus_split,
        wealth_gini,
    )
    from mesa_llm.analysis.plots import (
        plot_message_network,
        plot_price_path,
        plot_supply_demand,
        plot_surplus_by_agent,
    )
    from mesa_llm.analysis.report import compare, render_html, summary_table, write_csv

_EXPORTS: dict[str, str] = {
    "LazyContent": "loader",
    "MultiRecording": "loader",
    "Recording": "loader",
    "load_recording": "loader",
    "load_recordings": "loader",
    "agreement_rate": "metrics",
    "allocative_efficiency": "metrics",
    "competitive_equilibrium_by_step": "metrics",
    "gini": "metrics",
    "invalid_action_rate": "metrics",
    "llm_costs": "metrics",
    "pareto_nash_distances": "metrics",
    "price_volatility": "metrics",
    "rounds_to_agreement": "metrics",
    "smiths_alpha": "metrics",
    "summary_metrics": "metrics",
    "surplus_split": "metrics",
    "wealth_gini": "metrics",
    "plot_message_network": "plots",
    "plot_price_path": "plots",
    "plot_supply_demand": "plots",
    "plot_surplus_by_agent": "plots",
    "compare": "report",
    "render_html": "report",
    "summary_table": "report",
    "write_csv": "report",
}

__all__ = [
    "LazyContent",
    "MultiRecording",
    "Recording",
    "agreement_rate",
    "allocative_efficiency",
    "compare",
    "competitive_equilibrium_by_step",
    "gini",
    "invalid_action_rate",
    "llm_costs",
    "load_recording",
    "load_recordings",
    "pareto_nash_distances",
    "plot_message_network",
    "plot_price_path",
    "plot_supply_demand",
    "plot_surplus_by_agent",
    "price_volatility",
    "render_html",
    "rounds_to_agreement",
    "smiths_alpha",
    "summary_metrics",
    "summary_table",
    "surplus_split",
    "wealth_gini",
    "write_csv",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines `name` on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
