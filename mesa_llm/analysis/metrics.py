"""The summary of a recording: every metric in one JSON-ready dict (``analyze --json``, reports,
`compare`), and the public names of the metric modules in one place.

The metrics live in modules named for their concept: `market_metrics` (equilibrium, efficiency,
Smith's alpha, volatility, fees, wealth, P&L), `negotiation_metrics` (sessions, agreement,
surplus split, Pareto/Nash) and `llm_metrics` (calls, tokens, cost, tool-call validity).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from mesa_llm.analysis.llm_metrics import (
    invalid_action_rate,
    llm_agent_ids,
    llm_costs,
    llm_populations,
)
from mesa_llm.analysis.loader import Recording
from mesa_llm.analysis.market_metrics import (
    NON_TRADING_ROLES,
    _replay,
    allocative_efficiency,
    competitive_equilibrium_by_step,
    efficiency_report,
    fees,
    gini,
    pnl,
    price_volatility,
    realised_surplus,
    smiths_alpha,
    supply_and_demand,
    wealth_gini,
)
from mesa_llm.analysis.negotiation_metrics import (
    agreement_rate,
    negotiation_sessions,
    pareto_nash_distances,
    rounds_to_agreement,
    surplus_split,
)
from mesa_llm.analysis.plugin_metrics import plugin_metrics
from mesa_llm.analysis.stress import stress_metrics
from mesa_llm.analysis.units import decimals, goods_of, json_ready, mean_of, to_units
from mesa_llm.economics import efficiency

__all__ = [
    "NON_TRADING_ROLES",
    "agreement_rate",
    "allocative_efficiency",
    "competitive_equilibrium_by_step",
    "efficiency_report",
    "fees",
    "flatten_metrics",
    "gini",
    "invalid_action_rate",
    "llm_agent_ids",
    "llm_costs",
    "llm_populations",
    "negotiation_sessions",
    "pareto_nash_distances",
    "pnl",
    "price_volatility",
    "realised_surplus",
    "rounds_to_agreement",
    "smiths_alpha",
    "summary_metrics",
    "supply_and_demand",
    "surplus_split",
    "wealth_gini",
]


def _without(value: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    return None if value is None else {k: v for k, v in value.items() if k != key}


def summary_metrics(rec: Recording) -> dict[str, Any]:
    """Every metric of the run, JSON-ready (numbers, None, lists, dicts): used by
    ``mesa-llm analyze --json``, the reports and `compare`.

    Keys: run_id, scenario, seed, status, truncated, final_step, events, agents, trades, volume,
    goods {good: trades, volume, mean_price, last_price, ce_price, ce_quantity}, realised_surplus,
    max_surplus, allocative_efficiency (in [0, 1] or None), allocative_efficiency_note (why None),
    units_from_intermediaries, units_passed_through_intermediaries, smiths_alpha {good}, price_volatility {good}, messages,
    broadcasts, actions, rejections, invalid_action_rate, sessions, closed_sessions, agreements,
    agreement_rate, mean_rounds_to_agreement, mean_buyer_share, mean_distance_to_pareto,
    mean_distance_to_nash, contracts, contracts_fulfilled, contracts_breached, contract_value,
    wealth_gini, pnl {see market_metrics.pnl}, fees {see market_metrics.fees}, llm {see llm_costs},
    stress {see mesa_llm.analysis.stress.stress_metrics}; with plugin metrics installed, plugins
    {metric: {key: value} or None} and plugin_errors (one line per metric that failed).
    """
    tick = rec.tick_size
    replay = _replay(rec)
    trades = rec.trades
    clearings = rec.clearings
    goods: dict[str, dict[str, Any]] = {}
    for good in goods_of(rec, trades, clearings):
        t = trades[trades["good"] == good]
        qty = pd.to_numeric(t["quantity"], errors="coerce").fillna(0)
        price = pd.to_numeric(t["price"], errors="coerce")
        volume = int(qty.sum())
        c = clearings[(clearings["good"] == good)]["price"].dropna()
        eq = replay.initial.get(good)
        goods[good] = {
            "trades": len(t),
            "volume": volume,
            "mean_price": round(float((price * qty).sum() / volume), decimals(tick) + 2)
            if volume
            else None,
            "last_price": float(c.iloc[-1]) if len(c) else None,
            "ce_price": to_units(eq.price, tick, 1)
            if eq is not None and eq.price is not None
            else None,
            "ce_quantity": eq.quantity if eq is not None and eq.price is not None else None,
        }
    alphas = smiths_alpha(rec)
    for good, entry in goods.items():
        entry["smiths_alpha"] = alphas.get(good)
    max_surplus = sum(eq.max_surplus for eq in replay.initial.values())
    # re-based at value/cost shocks, as the run's own efficiency (one definition: mesa_llm.tallies)
    eff = efficiency(replay.realised, replay.benchmark, induced=replay.induced)
    intermediated = replay.induced and (replay.surplus.imported or replay.surplus.exported) > 0
    sessions = negotiation_sessions(rec)
    closed = int(sessions["closed"].astype(bool).sum()) if len(sessions) else 0
    agreed = (
        int(sessions.loc[sessions["closed"].astype(bool), "agreed"].astype(bool).sum())
        if closed
        else 0
    )
    rounds = rounds_to_agreement(rec)
    split = surplus_split(rec)
    distances = pareto_nash_distances(rec)
    contracts = rec.contracts
    status = contracts["status"] if len(contracts) else pd.Series(dtype=object)
    fulfilled = contracts[status == "fulfilled"] if len(contracts) else contracts
    messages = rec.messages
    header = rec.header
    metrics: dict[str, Any] = {
        "run_id": rec.run_id,
        "scenario": rec.scenario,
        "seed": header.get("seed"),
        "status": rec.status,
        "truncated": rec.truncated,
        "final_step": rec.final_step,
        "events": len(rec),
        "agents": len(header.get("agents") or []),
        "trades": len(trades),
        "volume": int(pd.to_numeric(trades["quantity"], errors="coerce").fillna(0).sum())
        if len(trades)
        else 0,
        "goods": goods,
        "realised_surplus": to_units(replay.realised, tick) if replay.induced else None,
        "max_surplus": to_units(max_surplus, tick) if replay.induced else None,
        "allocative_efficiency": eff.value,
        "allocative_efficiency_note": eff.reason,
        # only where intermediaries took part in the induced-value market
        "units_from_intermediaries": replay.surplus.imported if intermediated else None,
        "units_passed_through_intermediaries": replay.surplus.passed if intermediated else None,
        "smiths_alpha": alphas,
        "price_volatility": price_volatility(rec),
        "messages": len(messages),
        "broadcasts": int(messages["broadcast"].astype(bool).sum()) if len(messages) else 0,
        "actions": rec.count("action"),
        "rejections": rec.count("action_rejected"),
        "invalid_action_rate": invalid_action_rate(rec),
        "sessions": len(sessions),
        "closed_sessions": closed,
        "agreements": agreed,  # sessions that ended in an agreement (as the run summary counts them)
        "agreement_rate": agreed / closed if closed else None,
        "mean_rounds_to_agreement": float(rounds.mean()) if len(rounds) else None,
        "mean_buyer_share": mean_of(split["buyer_share"]) if len(split) else None,
        "mean_distance_to_pareto": mean_of(distances["distance_to_pareto"])
        if len(distances)
        else None,
        "mean_distance_to_nash": mean_of(distances["distance_to_nash"]) if len(distances) else None,
        "contracts": len(contracts),
        "contracts_fulfilled": len(fulfilled),
        "contracts_breached": int((status == "breached").sum()) if len(contracts) else 0,
        "contract_value": float(pd.to_numeric(fulfilled["value"], errors="coerce").fillna(0).sum())
        if len(fulfilled)
        else 0.0,
        "wealth_gini": wealth_gini(rec),
        # per population and in total; per agent: pnl(rec) and fees(rec) (a sweep's summary stays narrow)
        "pnl": _without(pnl(rec), "by_agent"),
        "fees": _without(fees(rec), "by_agent"),
        "llm": llm_costs(rec),
        "stress": stress_metrics(rec),
    }
    # plugin metrics (mesa_llm.metrics entry points), only where plugins give some
    extra = plugin_metrics(rec)
    if extra.values:
        metrics["plugins"] = extra.values
    if extra.errors:
        metrics["plugin_errors"] = extra.errors  # one line each; `analyze` prints them as warnings
    return dict(json_ready(metrics))


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metrics as one level: ``{"goods": {"widget": {"trades": 3}}}`` ->
    ``{"goods.widget.trades": 3}`` (lists are kept as they are)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, f"{name}."))
        else:
            out[name] = value
    return out
