"""Metrics of a recording: competitive equilibrium, efficiency, Smith's alpha, volatility,
negotiation outcomes (agreement rate, rounds, surplus split, Pareto/Nash distances), inequality,
invalid actions and LLM costs.

Pure functions of a `Recording` (nothing here runs a model). Money is in currency units; the
market computations (equilibrium, realised surplus) are done in integer ticks of the header's
``tick_size``, as the model does them, so the numbers match the model's own.

Definitions (REFERENCE.md, "Markets and economics"):

* competitive equilibrium (CE) of induced values and costs: values sorted high to low against
  costs sorted low to high; Q units trade, at any price in a range; the maximum surplus is the
  sum of value - cost over those units (`mesa_llm.economics.competitive_equilibrium`);
* allocative efficiency = realised gains from trade / maximum surplus at the initial CE, where a
  unit bought realises its buyer's next value and a unit sold costs its seller's next cost (in
  trade order; fulfilled contracts count like trades);
* Smith's alpha = 100 * RMS(trade price - P0) / P0, P0 the initial CE price (midpoint);
* Nash point = the outcome maximising the product of gains over reservation values; Pareto
  frontier = the outcomes no other outcome dominates (`mesa_llm.negotiation.outcome_space`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from mesa_llm.analysis.loader import Recording
from mesa_llm.economics import CompetitiveEquilibrium, competitive_equilibrium

__all__ = [
    "agreement_rate",
    "allocative_efficiency",
    "competitive_equilibrium_by_step",
    "flatten_metrics",
    "gini",
    "invalid_action_rate",
    "llm_agent_ids",
    "llm_costs",
    "llm_populations",
    "negotiation_sessions",
    "pareto_nash_distances",
    "price_volatility",
    "realised_surplus",
    "rounds_to_agreement",
    "smiths_alpha",
    "summary_metrics",
    "supply_and_demand",
    "surplus_split",
    "wealth_gini",
]

#: roles that hold no tradeable wealth by design (left out of the wealth Gini)
NON_TRADING_ROLES = frozenset({"regulator", "mediator"})
#: protocols where one party (the first: auction seller, buyer calling for proposals) runs the
#: session and the others may leave it without closing it
_ONE_TO_MANY = frozenset({"sealed_bid", "english", "call_for_proposals"})

# ----------------------------------------------------------------------------- money helpers


def _decimals(tick: float) -> int:
    exponent = Decimal(str(tick)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def _to_ticks(amount: float, tick: float) -> int:
    return int(round(float(amount) / tick))


def _to_units(ticks: float, tick: float, extra: int = 0) -> float:
    return round(ticks * tick, _decimals(tick) + extra)


def _finite(x: Any) -> float | None:
    """A finite float, or None (NaN, None, inf, not a number)."""
    if x is None or isinstance(x, bool):
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# ----------------------------------------------------------------------------- market replay


@dataclass
class _Schedule:
    """One agent's induced values and costs for one good (ticks), and how many it traded."""

    values: list[int]
    costs: list[int]
    bought: int = 0
    sold: int = 0


@dataclass
class _Replay:
    """What replaying the market's fills over the header's private values gives."""

    goods: list[str]
    initial: dict[str, CompetitiveEquilibrium]
    realised: int = 0  # gains from trade realised (ticks)
    benchmark: int = 0  # initial maximum surplus, re-based at value/cost shocks (as the model)
    by_step: list[dict[str, Any]] = field(default_factory=list)
    induced: bool = False  # some agent has induced values or costs
    schedules: dict[int, dict[str, _Schedule]] = field(default_factory=dict)  # where it stopped
    #: each agent's own gains on induced values (ticks): value - price bought, price - cost sold
    by_agent: dict[int, int] = field(default_factory=dict)


def _schedules(rec: Recording) -> tuple[dict[int, dict[str, _Schedule]], dict[int, str | None]]:
    tick = rec.tick_size
    out: dict[int, dict[str, _Schedule]] = {}
    populations: dict[int, str | None] = {}
    for agent in rec.header.get("agents") or []:
        agent_id = agent.get("agent_id")
        if not isinstance(agent_id, int):
            continue
        populations[agent_id] = agent.get("population")
        private = agent.get("private") or {}
        for good, pv in private.items():
            if not isinstance(pv, Mapping):
                continue
            values = [_to_ticks(v, tick) for v in pv.get("values") or []]
            costs = [_to_ticks(c, tick) for c in pv.get("costs") or []]
            out.setdefault(agent_id, {})[good] = _Schedule(values, costs)
    return out, populations


def _equilibria(
    schedules: dict[int, dict[str, _Schedule]], goods: list[str]
) -> dict[str, CompetitiveEquilibrium]:
    out = {}
    for good in goods:
        values: list[int] = []
        costs: list[int] = []
        for by_good in schedules.values():
            s = by_good.get(good)
            if s is not None:
                values.extend(s.values[s.bought :])
                costs.extend(s.costs[s.sold :])
        out[good] = competitive_equilibrium(values, costs)
    return out


def _fills(rec: Recording) -> list[tuple[int, int, str, str, int, int, int, float | None]]:
    """Units moved, in recording order: (position, step, kind, good, quantity, buyer, seller,
    price per unit or None) for every trade and every fulfilled contract with a good."""
    out: list[tuple[int, int, str, str, int, int, int, float | None]] = []
    trades = rec.trades
    if len(trades):
        for pos, row in zip(
            rec.positions("trade").tolist(),
            trades.reindex(columns=["step", "good", "quantity", "buyer_id", "seller_id", "price"]).itertuples(index=False),
            strict=True,
        ):
            step, good, qty, buyer, seller, price = row
            if isinstance(good, str) and _finite(qty) is not None:
                out.append((pos, int(step), "trade", good, int(qty), int(buyer), int(seller), _finite(price)))
    contracts = rec.table("contract")
    if len(contracts):
        columns = ["step", "stage", "status", "good", "quantity", "buyer_id", "seller_id", "price"]
        for pos, row in zip(
            rec.positions("contract").tolist(),
            contracts.reindex(columns=columns).itertuples(index=False),
            strict=True,
        ):
            step, stage, status, good, qty, buyer, seller, price = row
            if stage == "settled" and status == "fulfilled" and isinstance(good, str):
                out.append((pos, int(step), "contract", good, int(qty), int(buyer), int(seller), _finite(price)))
    out.sort(key=lambda f: f[0])
    return out


def _shifts(rec: Recording) -> list[tuple[int, int, dict[str, Any]]]:
    """Scheduled shift_private events: (position, step, event)."""
    table = rec.table("scheduled_event")
    out = []
    if len(table) and "event" in table:
        for pos, step, event in zip(
            rec.positions("scheduled_event").tolist(), table["step"], table["event"], strict=True
        ):
            if isinstance(event, Mapping) and event.get("type") == "shift_private":
                out.append((pos, int(step), dict(event)))
    return out


def _apply_shift(
    event: Mapping[str, Any],
    schedules: dict[int, dict[str, _Schedule]],
    populations: dict[int, str | None],
    tick: float,
) -> bool:
    """Apply a value/cost shock as the model does (ticks: max(round(x * scale) + add, 0));
    whether it changed values or costs."""
    field_name = event.get("field")
    good = event.get("good")
    if field_name not in ("values", "costs") or not isinstance(good, str):
        return False
    targets = event.get("populations")
    add = math.floor(float(event.get("add") or 0.0) / tick + 0.5)
    scale = float(event.get("scale", 1.0) if event.get("scale") is not None else 1.0)
    for agent_id, by_good in schedules.items():
        if targets and populations.get(agent_id) not in targets:
            continue
        s = by_good.get(good)
        if s is None:
            continue
        moved = [max(round(x * scale) + add, 0) for x in getattr(s, field_name)]
        setattr(s, field_name, moved)
    return True


def _replay(rec: Recording, *, by_step: bool = False, until_step: int | None = None) -> _Replay:
    """Replay fills and shocks over the header's private values (see module docstring); with
    `until_step`, stop at the start of that step (its shocks applied, none of its fills)."""
    tick = rec.tick_size
    schedules, populations = _schedules(rec)
    goods = sorted(
        {g for by_good in schedules.values() for g, s in by_good.items() if s.values or s.costs}
    )
    header_goods = list((rec.header.get("goods") or {}).keys())
    goods = [g for g in header_goods if g in goods] + [g for g in goods if g not in header_goods]
    initial = _equilibria(schedules, goods)
    result = _Replay(goods=goods, initial=initial, schedules=schedules)
    result.induced = any(
        s.values or s.costs for by_good in schedules.values() for s in by_good.values()
    )
    result.benchmark = sum(eq.max_surplus for eq in initial.values())
    if not goods:
        return result
    # (position in the recording, step, "fill" or "shift", what)
    moments: list[tuple[int, int, str, Any]] = [
        (pos, step, "fill", (good, qty, buyer, seller, price))
        for pos, step, _kind, good, qty, buyer, seller, price in _fills(rec)
    ]
    moments += [(pos, step, "shift", event) for pos, step, event in _shifts(rec)]
    moments.sort(key=lambda m: m[0])

    def apply(moment: tuple[int, int, str, Any]) -> None:
        _, _, kind, payload = moment
        if kind == "shift":
            if _apply_shift(payload, schedules, populations, tick):
                current = _equilibria(schedules, goods)
                result.benchmark = result.realised + sum(eq.max_surplus for eq in current.values())
            return
        good, qty, buyer, seller, price = payload
        paid = _to_ticks(price, tick) * qty if price is not None else 0
        s = schedules.get(buyer, {}).get(good)
        if s is not None:
            gained = sum(s.values[s.bought : s.bought + qty])
            result.realised += gained
            if s.values:
                result.by_agent[buyer] = result.by_agent.get(buyer, 0) + gained - paid
            s.bought += qty
        s = schedules.get(seller, {}).get(good)
        if s is not None:
            spent = sum(s.costs[s.sold : s.sold + qty])
            result.realised -= spent
            if s.costs:
                result.by_agent[seller] = result.by_agent.get(seller, 0) + paid - spent
            s.sold += qty

    if until_step is not None:
        for moment in moments:
            if moment[1] < until_step or (moment[2] == "shift" and moment[1] == until_step):
                apply(moment)
        return result
    if not by_step:
        for moment in moments:
            apply(moment)
        return result
    final = max(rec.final_step, max((m[1] for m in moments), default=0))
    i = 0
    current = initial
    for step in range(1, final + 1):
        changed = False
        # Before step s: every fill of earlier steps, and the shocks of step s (applied at its start).
        while i < len(moments) and (
            moments[i][1] < step or (moments[i][2] == "shift" and moments[i][1] == step)
        ):
            apply(moments[i])
            changed = True
            i += 1
        if changed:
            current = _equilibria(schedules, goods)
        for good in goods:
            eq = current[good]
            result.by_step.append(
                {
                    "step": step,
                    "good": good,
                    "ce_price": _to_units(eq.price, tick, 1) if eq.price is not None else math.nan,
                    "ce_price_low": _to_units(eq.price_low, tick)
                    if eq.price_low is not None
                    else math.nan,
                    "ce_price_high": _to_units(eq.price_high, tick)
                    if eq.price_high is not None
                    else math.nan,
                    "ce_quantity": eq.quantity,
                    "max_surplus": _to_units(eq.max_surplus, tick),
                }
            )
    for moment in moments[i:]:
        apply(moment)
    return result


def competitive_equilibrium_by_step(rec: Recording) -> pd.DataFrame:
    """The CE of the units still untraded at the start of each step, per good with induced values.

    Columns: step, good, ce_price (midpoint of the range), ce_price_low, ce_price_high,
    ce_quantity, max_surplus (currency units; NaN prices when no unit can trade). Units bought and
    sold in trades and fulfilled contracts of earlier steps are gone; value/cost shocks
    (``scheduled_event`` shift_private) apply from their step on.
    """
    columns = [
        "step",
        "good",
        "ce_price",
        "ce_price_low",
        "ce_price_high",
        "ce_quantity",
        "max_surplus",
    ]
    rows = _replay(rec, by_step=True).by_step
    if not rows:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=float if c.startswith(("ce_p", "max")) else object)
                for c in columns
            }
        )
    return pd.DataFrame(rows, columns=columns)


def supply_and_demand(
    rec: Recording, step: int | None = None, good: str | None = None
) -> dict[str, Any]:
    """The demand (values, high to low) and supply (costs, low to high) of the units still
    untraded at the start of `step` (default: the first step), in currency units, with their CE.

    `good` defaults to the first good with induced values. Without induced values, the buyers' and
    sellers' reservation prices of single-issue price negotiations (their utilities' reservation
    values mapped back to prices) stand in (``source`` "reservation prices"), and without those the
    limit orders placed in the step, one price per unit (``source`` "limit orders"; default step:
    the first with orders).

    Returns ``{"good", "step", "source" ("induced values" / "reservation prices" / "limit
    orders" / None), "values", "costs", "ce_quantity", "ce_price", "ce_price_low",
    "ce_price_high"}``.
    """
    tick = rec.tick_size
    at = 1 if step is None else int(step)
    replay = _replay(rec, until_step=at)
    values: list[int] = []
    costs: list[int] = []
    source: str | None = None
    chosen: str | None
    if replay.goods:
        chosen = good if good is not None else replay.goods[0]
        for by_good in replay.schedules.values():
            s = by_good.get(chosen)
            if s is not None:
                values.extend(s.values[s.bought :])
                costs.extend(s.costs[s.sold :])
        source = "induced values"
    else:
        chosen, values, costs = _reservation_prices(rec, good, tick)
        source = "reservation prices" if values or costs else None
        if source is None:
            chosen, at, values, costs = _order_book(rec, good, step, tick)
            source = "limit orders" if values or costs else None
    eq = competitive_equilibrium(values, costs)
    return {
        "good": chosen,
        "step": at,
        "source": source,
        "values": [_to_units(v, tick) for v in sorted(values, reverse=True)],
        "costs": [_to_units(c, tick) for c in sorted(costs)],
        "ce_quantity": eq.quantity,
        "ce_price": _to_units(eq.price, tick, 1) if eq.price is not None else None,
        "ce_price_low": _to_units(eq.price_low, tick) if eq.price_low is not None else None,
        "ce_price_high": _to_units(eq.price_high, tick) if eq.price_high is not None else None,
    }


def _order_book(
    rec: Recording, good: str | None, step: int | None, tick: float
) -> tuple[str | None, int, list[int], list[int]]:
    """Limit prices (ticks, one per unit) of the buy and sell orders placed in a step."""
    orders = rec.orders
    if orders.empty:
        return good, step or 1, [], []
    if good is None:
        goods = [g for g in _goods(rec, orders) if (orders["good"] == g).any()]
        good = goods[0] if goods else None
    mine = orders[orders["good"] == good]
    at = int(step) if step is not None else int(mine["step"].min()) if len(mine) else 1
    mine = mine[mine["step"] == at]
    prices = pd.to_numeric(mine["price"], errors="coerce")
    units = pd.to_numeric(mine["quantity"], errors="coerce").fillna(0).astype(int).clip(lower=0)
    out: dict[str, list[int]] = {"buy": [], "sell": []}
    for side, price, quantity in zip(mine["side"], prices, units, strict=True):
        if side in out and math.isfinite(price):
            out[side].extend([_to_ticks(price, tick)] * int(quantity))
    return good, at, out["buy"], out["sell"]


def _reservation_prices(
    rec: Recording, good: str | None, tick: float
) -> tuple[str | None, list[int], list[int]]:
    """Buyers' and sellers' reservation prices (ticks) from price-only negotiation utilities."""
    spaces = (rec.header.get("negotiation") or {}).get("spaces") or {}
    sessions = negotiation_sessions(rec)
    goods_of_space: dict[str, str] = {}
    for row in sessions.itertuples(index=False):
        if isinstance(row.space, Mapping) and isinstance(row.good, str):
            for name, space in spaces.items():
                if _same_space(space, row.space):
                    goods_of_space.setdefault(name, row.good)
    for name, space in spaces.items():
        chosen = goods_of_space.get(name)
        if good is not None and chosen != good:
            continue
        issues = {i.get("name"): i for i in space.get("issues") or []}
        price = issues.get("price")
        if price is None or price.get("type") == "categorical":
            continue
        low, high = float(price["low"]), float(price["high"])
        values: list[int] = []
        costs: list[int] = []
        for agent in rec.header.get("agents") or []:
            u = (agent.get("utilities") or {}).get(name)
            if not isinstance(u, Mapping) or (u.get("weights") or {}).get("price", 0) < 0.999:
                continue
            r = float(u.get("reservation", 0.0))
            if u.get("preferences", {}).get("price") == "decreasing":  # a buyer
                values.append(_to_ticks(low + (1.0 - r) * (high - low), tick))
            else:
                costs.append(_to_ticks(low + r * (high - low), tick))
        if values or costs:
            return chosen or good, values, costs
    return good, [], []


def realised_surplus(rec: Recording) -> float | None:
    """Gains from trade realised on induced values (currency units); None without induced values."""
    replay = _replay(rec)
    if not replay.induced:
        return None
    return _to_units(replay.realised, rec.tick_size)


def allocative_efficiency(rec: Recording, *, rebase_on_shocks: bool = False) -> float | None:
    """Realised gains from trade / the maximum surplus of the initial CE; None without induced
    values (or no possible gains).

    With ``rebase_on_shocks`` the denominator is re-based at every value/cost shock to what was
    realised so far plus the new CE's maximum, as the model's own ``efficiency()`` does; without
    shocks both are the same number.
    """
    replay = _replay(rec)
    denominator = (
        replay.benchmark
        if rebase_on_shocks
        else sum(eq.max_surplus for eq in replay.initial.values())
    )
    if not replay.induced or denominator <= 0:
        return None
    return replay.realised / denominator


def _goods(rec: Recording, *tables: pd.DataFrame) -> list[str]:
    goods = list((rec.header.get("goods") or {}).keys())
    for table in tables:
        if "good" in table:
            goods += [
                g
                for g in pd.unique(table["good"].dropna())
                if isinstance(g, str) and g not in goods
            ]
    return goods


def smiths_alpha(rec: Recording) -> dict[str, float | None]:
    """Per good: 100 * RMS(trade price - P0) / P0 with P0 the initial CE price (None without
    trades or without a CE price). One observation per trade, as in the model's summary."""
    replay = _replay(rec)
    tick = rec.tick_size
    trades = rec.trades
    out: dict[str, float | None] = {}
    for good in _goods(rec, trades):
        eq = replay.initial.get(good)
        prices = trades.loc[trades["good"] == good, "price"].to_numpy(dtype=float)
        prices = prices[np.isfinite(prices)]
        if eq is None or eq.price is None or eq.price <= 0 or len(prices) == 0:
            out[good] = None
            continue
        p0 = eq.price * tick
        out[good] = float(100.0 * np.sqrt(np.mean((prices - p0) ** 2)) / p0)
    return out


def price_volatility(rec: Recording) -> dict[str, float | None]:
    """Per good: the sample standard deviation (ddof=1) of the log returns of successive clearing
    prices (steps without a price are skipped); None with fewer than two returns."""
    clearings = rec.clearings
    out: dict[str, float | None] = {}
    for good in _goods(rec, clearings):
        prices = clearings.loc[clearings["good"] == good].sort_values("step", kind="stable")[
            "price"
        ]
        p = pd.to_numeric(prices, errors="coerce").to_numpy(dtype=float)
        p = p[np.isfinite(p) & (p > 0)]
        if len(p) < 3:
            out[good] = None
            continue
        out[good] = float(np.std(np.diff(np.log(p)), ddof=1))
    return out


# ----------------------------------------------------------------------------- negotiations


def negotiation_sessions(rec: Recording) -> pd.DataFrame:
    """One row per negotiation or auction session: session_id, protocol, parties, good, space
    (the outcome space dict), opened_step, closed (bool), closed_step, agreed (bool), agreements
    (count), first_agreement_step, first_agreement_round, outcome (agreed / disagreement /
    ended / open).

    A session is closed by an agreement, a disagreement, or an ``end`` event of the session itself
    or of a party that can end it (any party of a bilateral protocol; the first party, the seller or
    the calling buyer, of an auction or call for proposals: others ending there only withdraw).
    """
    columns = [
        "session_id", "protocol", "parties", "good", "space", "opened_step", "closed", "closed_step",
        "agreed", "agreements", "first_agreement_step", "first_agreement_round", "outcome",
    ]  # fmt: skip
    events = rec.negotiation_events
    sessions: dict[str, dict[str, Any]] = {}
    if len(events):
        cols = events.reindex(
            columns=[
                "session_id",
                "kind",
                "step",
                "agent_id",
                "protocol",
                "parties",
                "good",
                "space",
                "round",
            ]
        )
        for sid, kind, step, agent, protocol, parties, good, space, round_ in cols.itertuples(
            index=False
        ):
            if not isinstance(sid, str):
                continue
            s = sessions.get(sid)
            if s is None:
                s = sessions[sid] = {
                    "session_id": sid, "protocol": protocol, "parties": parties, "good": good,
                    "space": None, "opened_step": int(step), "closed": False, "closed_step": None,
                    "agreed": False, "agreements": 0, "first_agreement_step": None,
                    "first_agreement_round": None, "outcome": "open",
                }  # fmt: skip
            if kind == "opened" and isinstance(space, Mapping):
                s["space"] = dict(space)
                s["opened_step"] = int(step)
            if s["closed"]:
                continue
            if kind == "agreement":
                s["agreements"] += 1
                if not s["agreed"]:
                    s["agreed"] = True
                    s["first_agreement_step"] = int(step)
                    r = _finite(round_)
                    s["first_agreement_round"] = int(r) if r is not None else None
                # a call for proposals may go on to more agreements; it closes with an "end"
                if protocol != "call_for_proposals":
                    _close(s, step, "agreed")
            elif kind == "disagreement":
                _close(s, step, "agreed" if s["agreed"] else "disagreement")
            elif kind == "end":
                by_session = pd.isna(agent)
                runs_it = (
                    not by_session
                    and isinstance(parties, list)
                    and bool(parties)
                    and agent == parties[0]
                )
                if by_session or protocol not in _ONE_TO_MANY or runs_it:
                    _close(s, step, "agreed" if s["agreed"] else "ended")
    if not sessions:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame = pd.DataFrame(list(sessions.values()), columns=columns)
    for column in ("opened_step", "closed_step", "first_agreement_step", "first_agreement_round"):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    return frame


def _close(session: dict[str, Any], step: Any, outcome: str) -> None:
    session["closed"] = True
    session["closed_step"] = int(step)
    session["outcome"] = outcome


def agreement_rate(rec: Recording) -> float | None:
    """Agreed sessions / closed sessions (None when no session closed)."""
    sessions = negotiation_sessions(rec)
    if sessions.empty:
        return None
    closed = sessions[sessions["closed"].astype(bool)]
    if closed.empty:
        return None
    return float(closed["agreed"].astype(bool).sum() / len(closed))


def rounds_to_agreement(rec: Recording) -> pd.Series:
    """Per agreed session (index session_id): the rounds it took, counting the round of the
    agreement (its 0-based ``round`` + 1), or the steps from opening to agreement, inclusive, when
    the agreement has no round."""
    sessions = negotiation_sessions(rec)
    values: dict[str, int] = {}
    for row in sessions.itertuples(index=False):
        if not row.agreed:
            continue
        if not pd.isna(row.first_agreement_round):
            values[row.session_id] = int(row.first_agreement_round) + 1
        else:
            values[row.session_id] = int(row.first_agreement_step) - int(row.opened_step) + 1
    series = pd.Series(values, dtype="int64", name="rounds_to_agreement")
    series.index.name = "session_id"
    return series


@dataclass
class _Utilities:
    """The parties' utility functions over a space, rebuilt from the header."""

    space_name: str
    space: Any  # OutcomeSpace
    buyer: Any  # LinearAdditiveUtility
    seller: Any


def _space_name(
    rec: Recording, space: Mapping[str, Any] | None, buyer: Any, seller: Any
) -> str | None:
    spaces = (rec.header.get("negotiation") or {}).get("spaces") or {}
    if space is not None:
        for name, candidate in spaces.items():
            if _same_space(candidate, space):
                return str(name)
    shared = set(_agent_utilities(rec).get(buyer, {})) & set(_agent_utilities(rec).get(seller, {}))
    return next(iter(shared)) if len(shared) == 1 else None


def _same_space(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def issues(space: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        out = []
        for issue in space.get("issues") or []:
            values = issue.get("values")
            out.append(
                (
                    issue.get("name"),
                    issue.get("type"),
                    _finite(issue.get("low")),
                    _finite(issue.get("high")),
                    tuple(values) if isinstance(values, list) else None,
                )
            )
        return out

    return issues(a) == issues(b)


def _agent_utilities(rec: Recording) -> dict[Any, dict[str, Any]]:
    return {
        agent.get("agent_id"): dict(agent.get("utilities") or {})
        for agent in rec.header.get("agents") or []
    }


def _utilities(
    rec: Recording,
    cache: dict[Any, _Utilities | None],
    space: Mapping[str, Any] | None,
    buyer: Any,
    seller: Any,
) -> _Utilities | None:
    from mesa_llm.negotiation import LinearAdditiveUtility, OutcomeSpace

    name = _space_name(rec, space, buyer, seller)
    key = (name, buyer, seller)
    if key in cache:
        return cache[key]
    result: _Utilities | None = None
    spaces = (rec.header.get("negotiation") or {}).get("spaces") or {}
    utilities = _agent_utilities(rec)
    ub = utilities.get(buyer, {}).get(name) if name else None
    us = utilities.get(seller, {}).get(name) if name else None
    if name is not None and name in spaces and ub and us:
        try:
            outcome_space = OutcomeSpace.from_dict(spaces[name])
            result = _Utilities(
                name,
                outcome_space,
                LinearAdditiveUtility.from_dict(outcome_space, ub),
                LinearAdditiveUtility.from_dict(outcome_space, us),
            )
        except (KeyError, TypeError, ValueError):
            result = None
    cache[key] = result
    return result


def _agreements_with_utilities(
    rec: Recording,
) -> list[tuple[dict[str, Any], _Utilities | None, dict[str, Any] | None]]:
    """Every agreement with its parties' utilities (None if unknown) and validated terms."""
    from mesa_llm.negotiation import OutcomeError

    agreements = rec.agreements
    sessions = negotiation_sessions(rec).set_index("session_id") if len(agreements) else None
    cache: dict[Any, _Utilities | None] = {}
    out = []
    for row in agreements.to_dict("records"):
        sid = row.get("session_id")
        space = None
        if sessions is not None and sid in sessions.index:
            space = sessions.at[sid, "space"]
        buyer, seller = row.get("buyer_id"), row.get("seller_id")
        utils = _utilities(rec, cache, space if isinstance(space, Mapping) else None, buyer, seller)
        terms = row.get("terms") if isinstance(row.get("terms"), Mapping) else None
        outcome = None
        if utils is not None and terms is not None:
            try:
                outcome = utils.space.validate(terms)
            except OutcomeError:
                outcome = None
        out.append((row, utils, outcome))
    return out


def surplus_split(rec: Recording) -> pd.DataFrame:
    """Per agreement between a buyer and a seller whose utilities the header holds: their
    utilities of the agreed terms, reservation values, gains (utility - reservation), the joint
    gain and each side's share of it (None when the joint gain is not positive).

    Utilities are the agents' `LinearAdditiveUtility` over the session's outcome space (in [0, 1],
    undiscounted). For a single price issue the buyer's share is (value - price) / (value - cost).
    """
    columns = [
        "session_id", "step", "protocol", "buyer_id", "seller_id", "space", "terms",
        "buyer_utility", "seller_utility", "buyer_reservation", "seller_reservation",
        "buyer_gain", "seller_gain", "joint_gain", "buyer_share", "seller_share",
    ]  # fmt: skip
    rows = []
    for row, utils, outcome in _agreements_with_utilities(rec):
        if utils is None or outcome is None:
            continue
        ub, us = float(utils.buyer(outcome)), float(utils.seller(outcome))
        rb, rs = float(utils.buyer.reservation), float(utils.seller.reservation)
        gb, gs = ub - rb, us - rs
        joint = gb + gs
        rows.append(
            {
                "session_id": row.get("session_id"),
                "step": row.get("step"),
                "protocol": row.get("protocol"),
                "buyer_id": row.get("buyer_id"),
                "seller_id": row.get("seller_id"),
                "space": utils.space_name,
                "terms": dict(outcome),
                "buyer_utility": ub,
                "seller_utility": us,
                "buyer_reservation": rb,
                "seller_reservation": rs,
                "buyer_gain": gb,
                "seller_gain": gs,
                "joint_gain": joint,
                "buyer_share": gb / joint if joint > 1e-12 else None,
                "seller_share": gs / joint if joint > 1e-12 else None,
            }
        )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame(rows, columns=columns)


def pareto_nash_distances(rec: Recording, *, points: int | None = None) -> pd.DataFrame:
    """Per agreement with known utilities: the Euclidean distance in utility space (buyer,
    seller) to the Pareto frontier and to the Nash bargaining point, both exact for the
    linear-additive utilities over the whole space (``mesa_llm.negotiation.outcome_space``;
    ``points`` is no longer used: there is no grid).

    Columns: session_id, step, buyer_id, seller_id, space, terms, buyer_utility, seller_utility,
    distance_to_pareto (0 on the frontier), distance_to_nash (NaN when no outcome beats both
    reservation values), nash_terms, nash_buyer_utility, nash_seller_utility.
    """
    from mesa_llm.negotiation import exact_distance_to_pareto, exact_nash_point

    columns = [
        "session_id", "step", "buyer_id", "seller_id", "space", "terms", "buyer_utility",
        "seller_utility", "distance_to_pareto", "distance_to_nash", "nash_terms",
        "nash_buyer_utility", "nash_seller_utility",
    ]  # fmt: skip
    nash_cache: dict[tuple[str, str, str], dict[str, Any] | None] = {}
    rows = []
    for row, utils, outcome in _agreements_with_utilities(rec):
        if utils is None or outcome is None:
            continue
        parties = [utils.buyer, utils.seller]
        key = (utils.space_name, repr(utils.buyer), repr(utils.seller))
        if key not in nash_cache:
            nash_cache[key] = exact_nash_point(parties, utils.space)
        nash_terms = nash_cache[key]
        ub, us = float(utils.buyer(outcome)), float(utils.seller(outcome))
        nb = float(utils.buyer(nash_terms)) if nash_terms else math.nan
        ns = float(utils.seller(nash_terms)) if nash_terms else math.nan
        rows.append(
            {
                "session_id": row.get("session_id"),
                "step": row.get("step"),
                "buyer_id": row.get("buyer_id"),
                "seller_id": row.get("seller_id"),
                "space": utils.space_name,
                "terms": dict(outcome),
                "buyer_utility": ub,
                "seller_utility": us,
                "distance_to_pareto": exact_distance_to_pareto(parties, utils.space, outcome),
                "distance_to_nash": math.hypot(ub - nb, us - ns) if nash_terms else math.nan,
                "nash_terms": dict(nash_terms) if nash_terms is not None else None,
                "nash_buyer_utility": nb,
                "nash_seller_utility": ns,
            }
        )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame(rows, columns=columns)


# ----------------------------------------------------------------------------- agents


def gini(values: Iterable[float]) -> float:
    """Gini coefficient: sum |x_i - x_j| / (2 n^2 mean); 0 for equal (or all-zero) values, NaN
    for no values or a non-positive total with unequal values."""
    x = np.sort(np.asarray(list(values), dtype=float))
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan
    total = x.sum()
    if np.all(x == x[0]):
        return 0.0
    if total <= 0:
        return math.nan
    ranks = np.arange(1, n + 1)
    return float(2.0 * np.sum(ranks * x) / (n * total) - (n + 1) / n)


def _final_agent_states(rec: Recording) -> pd.DataFrame:
    states = rec.agent_states
    if states.empty:
        return states
    return states.sort_values("step", kind="stable").drop_duplicates("agent_id", keep="last")


def wealth_gini(rec: Recording) -> float | None:
    """Gini of final wealth (each agent's last ``agent_state`` wealth), leaving out agents whose
    role holds no wealth by design (regulator, mediator); None without agent states."""
    final = _final_agent_states(rec)
    if final.empty or "wealth" not in final:
        return None
    roles = (
        dict(zip(rec.agents["agent_id"], rec.agents["role"], strict=True))
        if len(rec.agents)
        else {}
    )
    keep = [roles.get(a) not in NON_TRADING_ROLES for a in final["agent_id"]]
    wealth = pd.to_numeric(final.loc[keep, "wealth"], errors="coerce").dropna()
    if wealth.empty:
        return None
    value = gini(wealth.tolist())
    return None if math.isnan(value) else value


def invalid_action_rate(rec: Recording) -> float | None:
    """Rejected actions / (applied actions + rejected actions); None when there were none."""
    rejected = rec.count("action_rejected")
    total = rec.count("action") + rejected
    return rejected / total if total else None


# ----------------------------------------------------------------------------- LLM costs


def llm_agent_ids(rec: Recording) -> set[int]:
    """Agents whose decisions came from an LLM: the header's ``llm`` policies, and any agent
    with a recorded LLM call."""
    ids: set[int] = set()
    agents = rec.agents
    if len(agents):
        ids.update(int(a) for a, policy in zip(agents["agent_id"], agents["policy"], strict=True) if policy == "llm")
    calls = rec.llm_calls
    if len(calls) and "agent_id" in calls:
        ids.update(int(a) for a in calls["agent_id"].dropna())
    return ids


def llm_populations(rec: Recording) -> dict[str, dict[str, int]]:
    """Per LLM population (the header's population labels): agents, calls, failed_calls,
    valid / invalid / repaired tool calls (repaired: valid calls of a repair round),
    actions_applied (other than wait), waits and rejected actions of its agents."""
    ids = llm_agent_ids(rec)
    agents = rec.agents
    population_of: dict[int, str] = {}
    if len(agents):
        for a, label in zip(agents["agent_id"], agents["population"], strict=True):
            if int(a) in ids:
                population_of[int(a)] = str(label)
    for a in ids - set(population_of):
        population_of[a] = "(unknown)"
    keys = ("agents", "calls", "failed_calls", "valid_tool_calls", "invalid_tool_calls",
            "repaired_tool_calls", "actions_applied", "waits", "rejected_actions")  # fmt: skip
    out: dict[str, dict[str, int]] = {}
    for label in population_of.values():
        out.setdefault(label, dict.fromkeys(keys, 0))["agents"] += 1
    calls = rec.llm_calls
    if len(calls):
        parsed = calls["parsed_tool_calls"] if "parsed_tool_calls" in calls else [None] * len(calls)
        for agent_id, purpose, error, tool_calls in zip(
            calls["agent_id"], calls["purpose"] if "purpose" in calls else [None] * len(calls), calls["error"], parsed,
            strict=True,
        ):
            label = population_of.get(int(agent_id)) if _finite(agent_id) is not None else None
            if label is None:
                continue
            tally = out[label]
            tally["calls"] += 1
            tally["failed_calls"] += int(isinstance(error, str))
            for call in tool_calls if isinstance(tool_calls, list) else []:
                if isinstance(call, Mapping) and call.get("valid") is True:
                    tally["valid_tool_calls"] += 1
                    tally["repaired_tool_calls"] += int(purpose == "repair")
                else:
                    tally["invalid_tool_calls"] += 1
    for table, applied in ((rec.actions, True), (rec.rejections, False)):
        if not len(table):
            continue
        kinds = table["type"] if "type" in table else [None] * len(table)
        for agent_id, kind in zip(table["agent_id"], kinds, strict=True):
            label = population_of.get(int(agent_id)) if _finite(agent_id) is not None else None
            if label is None:
                continue
            if not applied:
                out[label]["rejected_actions"] += 1
            elif kind == "wait":
                out[label]["waits"] += 1
            else:
                out[label]["actions_applied"] += 1
    return out


def llm_costs(rec: Recording) -> dict[str, Any]:
    """LLM usage of the run: calls, failed_calls, cached_calls, prompt/completion/total tokens,
    cost_usd, mean latency_s, models; cost and tokens per agreement and per currency unit of the
    LLM agents' own surplus (``realised_surplus``: their gains on induced values, value - price
    bought and price - cost sold; None without induced values); the LLM agents' tool calls
    (valid, invalid, repaired; ``invalid_tool_call_rate``) and ``invalid_action_rate`` over their
    actions only (None when they had none, e.g. every call failed); ``populations`` (see
    :func:`llm_populations`) and a warning per LLM population that applied no action."""
    calls = rec.llm_calls
    n = len(calls)
    prompt = int(pd.to_numeric(calls["prompt_tokens"], errors="coerce").fillna(0).sum()) if n else 0
    completion = (
        int(pd.to_numeric(calls["completion_tokens"], errors="coerce").fillna(0).sum()) if n else 0
    )
    cost = float(pd.to_numeric(calls["cost_usd"], errors="coerce").fillna(0).sum()) if n else 0.0
    failed = int(calls["error"].notna().sum()) if n else 0
    cached = int(calls["cached"].fillna(False).astype(bool).sum()) if n and "cached" in calls else 0
    latency = (
        pd.to_numeric(calls["latency_s"], errors="coerce").dropna() if n else pd.Series(dtype=float)
    )
    agreements = rec.count("agreement")
    ids = llm_agent_ids(rec)
    replay = _replay(rec)
    own = [replay.by_agent[a] for a in ids if a in replay.by_agent]
    # only the LLM agents' surplus: a ZI trader's gains must not make the LLM look cheap
    surplus = _to_units(sum(own), rec.tick_size) if own else None
    tokens = prompt + completion
    populations = llm_populations(rec)
    valid = sum(p["valid_tool_calls"] for p in populations.values())
    invalid = sum(p["invalid_tool_calls"] for p in populations.values())
    applied = sum(p["actions_applied"] + p["waits"] for p in populations.values())
    rejected = sum(p["rejected_actions"] for p in populations.values())
    steps = rec.final_step
    warnings = [
        f"LLM population {label!r} ({p['agents']} agents) applied no action in {steps} steps "
        f"({p['calls']} calls, {p['failed_calls']} failed, {p['invalid_tool_calls']} invalid tool calls)"
        for label, p in populations.items()
        if not p["actions_applied"] and steps
    ]
    return {
        "calls": n,
        "failed_calls": failed,
        "cached_calls": cached,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": tokens,
        "cost_usd": round(cost, 6),
        "mean_latency_s": float(latency.mean()) if len(latency) else None,
        "models": sorted({str(m) for m in calls["model"].dropna()}) if n else [],
        "agents": len(ids),
        "agreements": agreements,
        "cost_per_agreement": cost / agreements if agreements and n else None,
        "tokens_per_agreement": tokens / agreements if agreements and n else None,
        "realised_surplus": surplus,
        "cost_per_surplus": cost / surplus if n and surplus is not None and surplus > 0 else None,
        "tokens_per_surplus": tokens / surplus
        if n and surplus is not None and surplus > 0
        else None,
        "valid_tool_calls": valid,
        "invalid_tool_calls": invalid,
        "repaired_tool_calls": sum(p["repaired_tool_calls"] for p in populations.values()),
        "invalid_tool_call_rate": invalid / (valid + invalid) if valid + invalid else None,
        "actions_applied": sum(p["actions_applied"] for p in populations.values()),
        "invalid_action_rate": rejected / (applied + rejected) if applied + rejected else None,
        "populations": populations,
        "warnings": warnings,
    }


# ----------------------------------------------------------------------------- summary


def _json_ready(value: Any) -> Any:
    """Floats (NaN -> None), ints, strings, bools, None, lists and dicts of those."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray | pd.Series):
        return [_json_ready(v) for v in list(value)]
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _mean(series: pd.Series | Sequence[Any]) -> float | None:
    values = pd.to_numeric(pd.Series(list(series), dtype=object), errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def summary_metrics(rec: Recording) -> dict[str, Any]:
    """Every metric of the run, JSON-ready (numbers, None, lists, dicts): used by
    ``mesa-llm analyze --json``, the reports and `compare`.

    Keys: run_id, scenario, seed, status, truncated, final_step, events, agents, trades, volume,
    goods {good: trades, volume, mean_price, last_price, ce_price, ce_quantity}, realised_surplus,
    max_surplus, allocative_efficiency, smiths_alpha {good}, price_volatility {good}, messages,
    broadcasts, actions, rejections, invalid_action_rate, sessions, closed_sessions, agreements,
    agreement_rate, mean_rounds_to_agreement, mean_buyer_share, mean_distance_to_pareto,
    mean_distance_to_nash, contracts, contracts_fulfilled, contracts_breached, contract_value,
    wealth_gini, llm {see llm_costs}.
    """
    tick = rec.tick_size
    replay = _replay(rec)
    trades = rec.trades
    clearings = rec.clearings
    goods: dict[str, dict[str, Any]] = {}
    for good in _goods(rec, trades, clearings):
        t = trades[trades["good"] == good]
        qty = pd.to_numeric(t["quantity"], errors="coerce").fillna(0)
        price = pd.to_numeric(t["price"], errors="coerce")
        volume = int(qty.sum())
        c = clearings[(clearings["good"] == good)]["price"].dropna()
        eq = replay.initial.get(good)
        goods[good] = {
            "trades": len(t),
            "volume": volume,
            "mean_price": round(float((price * qty).sum() / volume), _decimals(tick) + 2)
            if volume
            else None,
            "last_price": float(c.iloc[-1]) if len(c) else None,
            "ce_price": _to_units(eq.price, tick, 1)
            if eq is not None and eq.price is not None
            else None,
            "ce_quantity": eq.quantity if eq is not None else None,
        }
    max_surplus = sum(eq.max_surplus for eq in replay.initial.values())
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
        "realised_surplus": _to_units(replay.realised, tick) if replay.induced else None,
        "max_surplus": _to_units(max_surplus, tick) if replay.induced else None,
        "allocative_efficiency": (replay.realised / max_surplus)
        if replay.induced and max_surplus > 0
        else None,
        "smiths_alpha": smiths_alpha(rec),
        "price_volatility": price_volatility(rec),
        "messages": len(messages),
        "broadcasts": int(messages["broadcast"].astype(bool).sum()) if len(messages) else 0,
        "actions": rec.count("action"),
        "rejections": rec.count("action_rejected"),
        "invalid_action_rate": invalid_action_rate(rec),
        "sessions": len(sessions),
        "closed_sessions": closed,
        "agreements": rec.count("agreement"),
        "agreement_rate": agreed / closed if closed else None,
        "mean_rounds_to_agreement": float(rounds.mean()) if len(rounds) else None,
        "mean_buyer_share": _mean(split["buyer_share"]) if len(split) else None,
        "mean_distance_to_pareto": _mean(distances["distance_to_pareto"])
        if len(distances)
        else None,
        "mean_distance_to_nash": _mean(distances["distance_to_nash"]) if len(distances) else None,
        "contracts": len(contracts),
        "contracts_fulfilled": len(fulfilled),
        "contracts_breached": int((status == "breached").sum()) if len(contracts) else 0,
        "contract_value": float(pd.to_numeric(fulfilled["value"], errors="coerce").fillna(0).sum())
        if len(fulfilled)
        else 0.0,
        "wealth_gini": wealth_gini(rec),
        "llm": llm_costs(rec),
    }
    return dict(_json_ready(metrics))


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
