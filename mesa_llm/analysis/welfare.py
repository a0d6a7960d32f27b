"""Welfare of each agent in money, against its own private values: the one accounting the report
and the dashboard share.

An agent's *surplus* is its cash change plus the value, to it, of the units it bought minus the
value of the units it sold: a trader's induced values (highest first) and costs (lowest first), a
negotiator's reservation price of a price-only outcome space, an auction seller's reserve (its
induced cost). A unit beyond what the agent has private values for is worth nothing to it here,
as in the run's own induced-value surplus; an agent that traded without any private value of what
it traded has no surplus (None): its *marked P&L* (cash change plus holdings change marked at a
stated price per good) is the figure for it, kept as a separate, labelled column.

Pure functions of plain data (the recording header and the agents' last ``agent_state``), so a
finished recording (`welfare_table`) and the dashboard's live fold (`agent_welfare`) compute the
same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["COLUMNS", "SIDES", "agent_welfare", "reservation_prices", "side_totals", "welfare_table"]

#: the sides an agent is counted on (its role: buyer, seller; any other role is "others")
SIDES = ("buyers", "sellers", "others")
#: the columns of `agent_welfare`
COLUMNS = [
    "agent_id", "name", "population", "side", "cash_change", "surplus", "surplus_basis", "marked_pnl", "marked_at",
]  # fmt: skip


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _space_goods(header: Mapping[str, Any]) -> dict[str, str]:
    """outcome space name -> the good its sessions trade (scenario sessions and default spaces)."""
    spec = (header.get("scenario") or {}).get("spec") or {}
    negotiation = spec.get("negotiation") or {} if isinstance(spec, Mapping) else {}
    out: dict[str, str] = {}
    for session in negotiation.get("sessions") or []:
        if isinstance(session, Mapping) and session.get("space") and session.get("good"):
            out.setdefault(str(session["space"]), str(session["good"]))
    for good, space in (negotiation.get("default_spaces") or {}).items():
        out.setdefault(str(space), str(good))
    goods = list(header.get("goods") or {})
    if len(goods) == 1:  # one good: every price space is about it
        for name in (header.get("negotiation") or {}).get("spaces") or {}:
            out.setdefault(str(name), str(goods[0]))
    return out


def reservation_prices(header: Mapping[str, Any], agent: Mapping[str, Any]) -> dict[str, tuple[str, float]]:
    """good -> ("buy" or "sell", reservation price) of an agent's price-only utilities: the most a
    buyer pays (low + (1 - r)(high - low), price decreasing) or the least a seller takes
    (low + r (high - low)), r its reservation utility."""
    spaces = (header.get("negotiation") or {}).get("spaces") or {}
    goods = _space_goods(header)
    out: dict[str, tuple[str, float]] = {}
    for name, u in (agent.get("utilities") or {}).items():
        space = spaces.get(name)
        good = goods.get(str(name))
        if not isinstance(u, Mapping) or not isinstance(space, Mapping) or good is None:
            continue
        if (_num((u.get("weights") or {}).get("price")) or 0.0) < 0.999:
            continue  # several issues weigh: no single price says what the deal was worth
        price = next((i for i in space.get("issues") or [] if i.get("name") == "price"), None)
        low, high = (_num(price.get("low")), _num(price.get("high"))) if isinstance(price, Mapping) else (None, None)
        r = _num(u.get("reservation"))
        if low is None or high is None or r is None:
            continue
        if (u.get("preferences") or {}).get("price") == "decreasing":
            out[good] = ("buy", low + (1.0 - r) * (high - low))
        else:
            out[good] = ("sell", low + r * (high - low))
    return out


def _side(role: Any) -> str:
    return "buyers" if role == "buyer" else "sellers" if role == "seller" else "others"


def agent_welfare(
    header: Mapping[str, Any], states: Mapping[Any, Mapping[str, Any]], marks: Mapping[str, float]
) -> pd.DataFrame:
    """One row per agent of ``header`` with a state in ``states`` (agent id -> its last
    ``agent_state`` content: cash, holdings, units_bought, units_sold): the module docstring's
    surplus (None without private values of what it traded) and what it is measured against,
    and the marked P&L with the prices it used (``marks``: good -> price; a good without a mark
    is marked at 0 and said so)."""
    rows = []
    for agent in header.get("agents") or []:
        if not isinstance(agent, Mapping):
            continue
        state = states.get(agent.get("agent_id"))
        cash = _num(state.get("cash")) if isinstance(state, Mapping) else None
        if state is None or cash is None:
            continue
        endowment = agent.get("endowment") or {}
        cash_change = cash - (_num(endowment.get("cash")) or 0.0)
        held, bought, sold = (_mapping(state.get(k)) for k in ("holdings", "units_bought", "units_sold"))
        had = _mapping(endowment.get("holdings"))
        private = agent.get("private") or {}
        reservations = reservation_prices(header, agent)
        surplus: float | None = cash_change
        bases: list[str] = []
        for good in sorted(set(bought) | set(sold)):
            n_bought, n_sold = int(bought.get(good) or 0), int(sold.get(good) or 0)
            if not n_bought and not n_sold:
                continue
            pv = _mapping(private.get(good))
            values = [v for v in (pv.get("values") or []) if _num(v) is not None]
            costs = [c for c in (pv.get("costs") or []) if _num(c) is not None]
            reservation = reservations.get(good)
            if reservation is not None and not values and not costs:
                side, price = reservation
                values, costs = ([price] * n_bought, []) if side == "buy" else ([], [price] * n_sold)
                bases.append(f"reservation price {price:,.2f} ({good})")
            elif values or costs:
                bases.append(f"induced {'values' if values else 'costs'} ({good})")
            else:
                surplus = None  # traded a good it has no private value of
                break
            if surplus is not None:
                surplus += float(sum(values[:n_bought])) - float(sum(costs[:n_sold]))
        if surplus is not None and not bases:
            has_private = any(
                isinstance(p, Mapping) and (p.get("values") or p.get("costs")) for p in private.values()
            ) or bool(reservations)
            if has_private:
                bases.append("own values (no unit traded)")
            else:
                surplus = None  # no private values at all: the marked P&L is its figure
        marked = cash_change
        used: list[str] = []
        for good in sorted(set(held) | set(had)):
            change = (_num(held.get(good)) or 0.0) - (_num(had.get(good)) or 0.0)
            if change:
                mark = marks.get(good)
                marked += change * (mark or 0.0)
                used.append(f"{good} at {mark:,.2f}" if mark is not None else f"{good} at 0 (no price)")
        rows.append(
            {
                "agent_id": agent.get("agent_id"), "name": str(agent.get("name") or agent.get("agent_id")),
                "population": str(agent.get("population") or ""), "side": _side(agent.get("role")),
                "cash_change": round(cash_change, 6), "surplus": None if surplus is None else round(surplus, 6),
                "surplus_basis": "; ".join(bases) if surplus is not None else "no private values of what it traded",
                "marked_pnl": round(marked, 6), "marked_at": ", ".join(used) or "-",
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def side_totals(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per side (buyers, sellers, others, each only when it has agents): agents, surplus (sum of
    the agents with one; None if none has), agents_without_values and marked_pnl (sum)."""
    out: dict[str, dict[str, Any]] = {}
    for side in SIDES:
        mine = table[table["side"] == side] if len(table) else table
        if not len(mine):
            continue
        surplus = pd.to_numeric(mine["surplus"], errors="coerce")
        out[side] = {
            "agents": len(mine),
            "surplus": round(float(surplus.sum()), 6) if surplus.notna().any() else None,
            "agents_without_values": int(surplus.isna().sum()),
            "marked_pnl": round(float(pd.to_numeric(mine["marked_pnl"], errors="coerce").sum()), 6),
        }
    return out


def welfare_table(rec: Any) -> pd.DataFrame:
    """`agent_welfare` of a finished recording (a `mesa_llm.analysis.Recording`): each agent's
    last ``agent_state``, holdings marked at the last clearing price (else the reference price)."""
    from mesa_llm.analysis.market_metrics import _final_agent_states, _last_prices

    final = _final_agent_states(rec)
    states: dict[Any, dict[str, Any]] = {}
    if len(final):
        for record in final.to_dict("records"):
            states[record.get("agent_id")] = record
    return agent_welfare(rec.header, states, _last_prices(rec))
