"""Analysis of recordings: recordings -> pandas tables, market and negotiation metrics, plots, reports.

This layer reads only the recording format (docs/architecture/layers.md): it imports the reader of
`mesa_llm.recording` and the pure `mesa_llm.negotiation` and `mesa_llm.economics` functions, never
the model, the agents or the LLM layer. Importing it is cheap: pandas and numpy are imported with
the first name used from it, matplotlib only inside the plot functions::

    from mesa_llm.analysis import load_recording, summary_metrics, render_html
    rec = load_recording("recordings/double_auction_seed42_....jsonl")
    rec.trades.head(); summary_metrics(rec)["allocative_efficiency"]
    render_html(rec, "report.html")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesa_llm.analysis.llm_metrics import invalid_action_rate, llm_costs
    from mesa_llm.analysis.loader import (
        LazyContent,
        MultiRecording,
        Recording,
        load_recording,
        load_recordings,
    )
    from mesa_llm.analysis.market_metrics import (
        allocative_efficiency,
        competitive_equilibrium_by_step,
        efficiency_over_time,
        efficiency_report,
        fees,
        gini,
        pnl,
        price_volatility,
        smiths_alpha,
        wealth_gini,
    )
    from mesa_llm.analysis.metrics import summary_metrics
    from mesa_llm.analysis.negotiation_metrics import (
        agreement_rate,
        pareto_nash_distances,
        rounds_to_agreement,
        surplus_split,
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
    "agreement_rate": "negotiation_metrics",
    "allocative_efficiency": "market_metrics",
    "competitive_equilibrium_by_step": "market_metrics",
    "efficiency_over_time": "market_metrics",
    "efficiency_report": "market_metrics",
    "fees": "market_metrics",
    "pnl": "market_metrics",
    "gini": "market_metrics",
    "invalid_action_rate": "llm_metrics",
    "llm_costs": "llm_metrics",
    "pareto_nash_distances": "negotiation_metrics",
    "price_volatility": "market_metrics",
    "rounds_to_agreement": "negotiation_metrics",
    "smiths_alpha": "market_metrics",
    "summary_metrics": "metrics",
    "surplus_split": "negotiation_metrics",
    "wealth_gini": "market_metrics",
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
    "efficiency_over_time",
    "efficiency_report",
    "fees",
    "pnl",
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
