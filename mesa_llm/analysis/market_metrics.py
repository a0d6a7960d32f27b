"""Market metrics of a recording: competitive equilibrium, allocative efficiency, Smith's alpha,
volatility, fees, wealth and P&L, and their paths over time.

Pure functions of a `Recording` (nothing here runs a model). Money is in currency units; the
equilibrium and surplus computations run in integer ticks (through `mesa_llm.market.Money`), as the
model does them, so the numbers match the model's own.

Definitions (REFERENCE.md, "Markets and economics"; the efficiency rule is `mesa_llm.economics`):

* competitive equilibrium (CE) of induced values and costs: values sorted high to low against
  costs sorted low to high; Q units trade, at any price in a range; the maximum surplus is the
  sum of value - cost over those units (`mesa_llm.economics.competitive_equilibrium`);
* allocative efficiency (Smith 1962; Gode & Sunder 1993) = realised surplus of the induced-value
  economy / maximum surplus at the initial CE, in [0, 1] or None with a reason. A unit bought
  realises its buyer's next value and a unit sold costs its seller's next cost (in trade order;
  fulfilled contracts count like trades); agents without induced values (market makers,
  speculators, noise traders) only pass units on, so their inventory and profits add nothing;
* Smith's alpha = 100 * RMS(trade price - P0) / P0, P0 the initial CE price (midpoint)
  (`mesa_llm.economics.smiths_alpha`, the one implementation);
* P&L of an agent = its final cash + holdings marked at the last price, minus the same for its
  endowment (so a price move alone is no P&L): what applies where there are no induced values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mesa_llm import economics
from mesa_llm.analysis.loader import Recording
from mesa_llm.analysis.negotiation_metrics import _same_space, negotiation_sessions
from mesa_llm.analysis.units import finite, goods_of, money_of, to_ticks, to_units
from mesa_llm.economics import (
    CompetitiveEquilibrium,
    Efficiency,
    InducedSurplus,
    competitive_equilibrium,
    efficiency,
)

__all__ = [
    "NON_TRADING_ROLES",
    "allocative_efficiency",
    "competitive_equilibrium_by_step",
    "efficiency_over_time",
    "efficiency_report",
    "fees",
    "gini",
    "pnl",
    "price_volatility",
    "realised_surplus",
    "smiths_alpha",
    "supply_and_demand",
    "wealth_gini",
]

#: roles that hold no tradeable wealth by design (left out of the wealth Gini)
NON_TRADING_ROLES = frozenset({"regulator", "mediator"})

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
    realised: int = 0  # gains from trade of the induced-value economy realised (ticks)
    surplus: InducedSurplus = field(default_factory=InducedSurplus)
    benchmark: int = 0  # initial maximum surplus, re-based at value/cost shocks (as the model)
    by_step: list[dict[str, Any]] = field(default_factory=list)
    induced: bool = False  # some agent has induced values or costs
    schedules: dict[int, dict[str, _Schedule]] = field(default_factory=dict)  # where it stopped
    #: (step, realised at the start of that step) for every step of a `by_step` replay
    realised_at_start: list[tuple[int, int]] = field(default_factory=list)
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
            values = [to_ticks(v, tick) for v in pv.get("values") or []]
            costs = [to_ticks(c, tick) for c in pv.get("costs") or []]
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
            if isinstance(good, str) and finite(qty) is not None:
                out.append((pos, int(step), "trade", good, int(qty), int(buyer), int(seller), finite(price)))
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
                out.append((pos, int(step), "contract", good, int(qty), int(buyer), int(seller), finite(price)))
    out.sort(key=lambda f: f[0])
    return out


def _shifts(rec: Recording) -> list[tuple[int, int, dict[str, Any]]]:
    """What moved induced values: scheduled shift_private events, and each step of a flash crash
    that acted on values (as `mesa_llm.stress` moves them): (position, step, event)."""
    table = rec.table("scheduled_event")
    out: list[tuple[int, int, dict[str, Any]]] = []
    if not (len(table) and "event" in table):
        return out
    acts_on = table["acts_on"] if "acts_on" in table else [None] * len(table)
    phases = table["phase"] if "phase" in table else [None] * len(table)
    step_starts: dict[int, int] = {}
    starts = rec.table("step_start")
    if len(starts):
        step_starts = dict(zip(starts["step"].astype(int).tolist(), rec.positions("step_start").tolist(), strict=True))
    for pos, step, event, on, phase in zip(
        rec.positions("scheduled_event").tolist(), table["step"], table["event"], acts_on, phases, strict=True
    ):
        if not isinstance(event, Mapping):
            continue
        if event.get("type") == "shift_private":
            out.append((pos, int(step), dict(event)))
        elif event.get("type") == "flash_crash" and on == "values" and phase == "start":
            key = (pos, event.get("good"), tuple(event.get("populations") or ()))
            at, duration = int(event.get("at_step") or step), int(event.get("duration") or 1)
            magnitude = float(event.get("magnitude") or 0.0)
            out.append((pos, int(step), {"type": "_crash", "key": key, "good": event.get("good"),
                                          "populations": event.get("populations"), "depth": magnitude}))  # fmt: skip
            for later in range(at + 1, at + duration + 1):
                depth = magnitude * (1 - (later - at) / duration) if later < at + duration else None
                where = step_starts.get(later)
                if where is not None:  # a step the recording reached: its start moves the values
                    out.append((where, later, {"type": "_crash", "key": key, "depth": depth}))
    return out


def _apply_crash(
    event: Mapping[str, Any],
    schedules: dict[int, dict[str, _Schedule]],
    populations: dict[int, str | None],
    bases: dict[Any, dict[tuple[int, str], list[int]]],
) -> bool:
    """One step of a flash crash of induced values: values = base x (1 - depth) over the values at
    its start (kept in ``bases`` while it runs); depth None ends it."""
    key = event["key"]
    if key not in bases:
        good, targets = event.get("good"), event.get("populations")
        bases[key] = {
            (agent_id, g): list(s.values)
            for agent_id, by_good in schedules.items()
            if not targets or populations.get(agent_id) in targets
            for g, s in by_good.items()
            if s.values and good in (None, g)
        }
    base = bases[key]
    depth = event.get("depth")
    for (agent_id, good), values in base.items():
        moved = list(values) if depth is None else [max(round(v * (1 - depth)), 0) for v in values]
        schedules[agent_id][good].values = moved
    if depth is None:
        del bases[key]
    return bool(base)


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
        moved = [economics.shifted(x, scale, add) for x in getattr(s, field_name)]
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
    crash_bases: dict[Any, dict[tuple[int, str], list[int]]] = {}

    def apply(moment: tuple[int, int, str, Any]) -> None:
        _, _, kind, payload = moment
        if kind == "shift":
            moved = (
                _apply_crash(payload, schedules, populations, crash_bases)
                if payload.get("type") == "_crash"
                else _apply_shift(payload, schedules, populations, tick)
            )
            if moved:
                current = _equilibria(schedules, goods)
                result.benchmark = result.realised + sum(eq.max_surplus for eq in current.values())
            return
        good, qty, buyer, seller, price = payload
        paid = to_ticks(price, tick) * qty if price is not None else 0
        values: list[int] = []
        costs: list[int] = []
        s = schedules.get(buyer, {}).get(good)
        if s is not None:
            values = s.values[s.bought : s.bought + qty]
            if s.values:
                result.by_agent[buyer] = result.by_agent.get(buyer, 0) + sum(values) - paid
            s.bought += qty
        s = schedules.get(seller, {}).get(good)
        if s is not None:
            costs = s.costs[s.sold : s.sold + qty]
            if s.costs:
                result.by_agent[seller] = result.by_agent.get(seller, 0) + paid - sum(costs)
            s.sold += qty
        # the induced-value economy's surplus: intermediaries pass units on (mesa_llm.economics)
        result.surplus.fill(good, qty, values, costs)
        result.realised = result.surplus.realised

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
        result.realised_at_start.append((step, result.realised))
        for good in goods:
            eq = current[good]
            result.by_step.append(
                {
                    "step": step,
                    "good": good,
                    "ce_price": to_units(eq.price, tick, 1) if eq.price is not None else math.nan,
                    "ce_price_low": to_units(eq.price_low, tick)
                    if eq.price_low is not None
                    else math.nan,
                    "ce_price_high": to_units(eq.price_high, tick)
                    if eq.price_high is not None
                    else math.nan,
                    "ce_quantity": eq.quantity,
                    "max_surplus": to_units(eq.max_surplus, tick),
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
        "values": [to_units(v, tick) for v in sorted(values, reverse=True)],
        "costs": [to_units(c, tick) for c in sorted(costs)],
        "ce_quantity": eq.quantity,
        "ce_price": to_units(eq.price, tick, 1) if eq.price is not None else None,
        "ce_price_low": to_units(eq.price_low, tick) if eq.price_low is not None else None,
        "ce_price_high": to_units(eq.price_high, tick) if eq.price_high is not None else None,
    }


def _order_book(
    rec: Recording, good: str | None, step: int | None, tick: float
) -> tuple[str | None, int, list[int], list[int]]:
    """Limit prices (ticks, one per unit) of the buy and sell orders placed in a step."""
    orders = rec.orders
    if orders.empty:
        return good, step or 1, [], []
    if good is None:
        goods = [g for g in goods_of(rec, orders) if (orders["good"] == g).any()]
        good = goods[0] if goods else None
    mine = orders[orders["good"] == good]
    at = int(step) if step is not None else int(mine["step"].min()) if len(mine) else 1
    mine = mine[mine["step"] == at]
    prices = pd.to_numeric(mine["price"], errors="coerce")
    units = pd.to_numeric(mine["quantity"], errors="coerce").fillna(0).astype(int).clip(lower=0)
    out: dict[str, list[int]] = {"buy": [], "sell": []}
    for side, price, quantity in zip(mine["side"], prices, units, strict=True):
        if side in out and math.isfinite(price):
            out[side].extend([to_ticks(price, tick)] * int(quantity))
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
                values.append(to_ticks(low + (1.0 - r) * (high - low), tick))
            else:
                costs.append(to_ticks(low + r * (high - low), tick))
        if values or costs:
            return chosen or good, values, costs
    return good, [], []


def realised_surplus(rec: Recording) -> float | None:
    """Gains from trade realised on induced values (currency units); None without induced values."""
    replay = _replay(rec)
    if not replay.induced:
        return None
    return to_units(replay.realised, rec.tick_size)


def allocative_efficiency(rec: Recording, *, rebase_on_shocks: bool = True) -> float | None:
    """Realised surplus of the induced-value economy / the most it could realise, in [0, 1]; None
    when undefined (`efficiency_report` gives the reason). Intermediaries' endowed units and
    trading profits add nothing (definition and sources: `mesa_llm.economics`).

    The denominator is the initial CE's maximum surplus, re-based at every value/cost shock (and
    every step of a flash crash of demand) to what was realised so far plus the new CE's maximum —
    the run's own efficiency, to the last digit. ``rebase_on_shocks=False`` keeps the initial
    maximum; without shocks both are the same number.
    """
    return efficiency_report(rec, rebase_on_shocks=rebase_on_shocks).value


def efficiency_report(rec: Recording, *, rebase_on_shocks: bool = True) -> Efficiency:
    """`allocative_efficiency` with the reason when it is None (`mesa_llm.economics.efficiency`)."""
    replay = _replay(rec)
    denominator = (
        replay.benchmark
        if rebase_on_shocks
        else sum(eq.max_surplus for eq in replay.initial.values())
    )
    return efficiency(replay.realised, denominator, induced=replay.induced)


def _trade_ticks(rec: Recording, good: str) -> pd.DataFrame:
    """The good's trades: step and price in ticks (rows with a finite price)."""
    trades = rec.trades
    if trades.empty:
        return pd.DataFrame({"step": pd.Series(dtype=int), "ticks": pd.Series(dtype=int)})
    mine = trades.loc[trades["good"] == good, ["step", "price"]]
    price = pd.to_numeric(mine["price"], errors="coerce")
    mine = mine[np.isfinite(price.to_numpy(dtype=float))]
    money = money_of(rec)
    ticks = [money.round_to_tick(p) for p in mine["price"].astype(float).tolist()]
    return pd.DataFrame({"step": mine["step"].astype(int).to_numpy(), "ticks": np.asarray(ticks, dtype=np.int64)})


def smiths_alpha(rec: Recording) -> dict[str, float | None]:
    """Per good: 100 * RMS(trade price - P0) / P0 with P0 the initial CE price (None without
    trades or without a CE price). One observation per trade, as in the model's summary
    (`mesa_llm.economics.smiths_alpha`)."""
    replay = _replay(rec)
    out: dict[str, float | None] = {}
    for good in goods_of(rec, rec.trades):
        eq = replay.initial.get(good)
        out[good] = economics.smiths_alpha(_trade_ticks(rec, good)["ticks"].tolist(), eq.price if eq else None)
    return out


def _nan_if_none(x: float | None) -> float:
    return math.nan if x is None else x


def efficiency_over_time(rec: Recording) -> pd.DataFrame:
    """Per step: the induced-value economy's realised surplus and allocative efficiency so far
    (after the step's trades; the initial CE maximum as denominator), and per good Smith's alpha
    of the trades so far. Columns: step, realised_surplus, efficiency (NaN where undefined), then
    ``alpha_<good>`` per good with a CE price. Empty without induced values."""
    replay = _replay(rec, by_step=True)
    if not replay.induced:
        return pd.DataFrame(columns=["step", "realised_surplus", "efficiency"])
    tick = rec.tick_size
    best = sum(eq.max_surplus for eq in replay.initial.values())
    # realised at the start of step s+1 is the realised after step s; the last step's is the total
    after = {step - 1: realised for step, realised in replay.realised_at_start}
    final = max(rec.final_step, max(after, default=0))
    after[final] = replay.realised
    rows = []
    last = 0
    for step in range(1, final + 1):
        last = after.get(step, last)
        report = efficiency(last, best)
        rows.append({"step": step, "realised_surplus": to_units(last, tick),
                     "efficiency": report.value if report.value is not None else math.nan})  # fmt: skip
    frame = pd.DataFrame(rows)
    for good, eq in replay.initial.items():
        if eq.price is None:
            continue
        trades = _trade_ticks(rec, good)
        by_step = trades.assign(sq=trades["ticks"] ** 2).groupby("step").agg(
            n=("ticks", "size"), total=("ticks", "sum"), total_sq=("sq", "sum")
        )
        by_step = by_step.reindex(frame["step"], fill_value=0).cumsum()
        frame[f"alpha_{good}"] = [
            _nan_if_none(economics.smiths_alpha_from_moments(int(n), int(t), int(q), eq.price))
            for n, t, q in by_step.itertuples(index=False)
        ]
    return frame


def price_volatility(rec: Recording) -> dict[str, float | None]:
    """Per good: the sample standard deviation (ddof=1) of the log returns of successive clearing
    prices (steps without a price are skipped); None with fewer than two returns."""
    clearings = rec.clearings
    out: dict[str, float | None] = {}
    for good in goods_of(rec, clearings):
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


# ----------------------------------------------------------------------------- agents


def gini(values: Iterable[float]) -> float:
    """Gini coefficient: ``sum |x_i - x_j| / (2 n^2 mean)``; 0 for equal (or all-zero) values, NaN
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




# ----------------------------------------------------------------------------- fees, P&L


def _names(rec: Recording) -> dict[int, str]:
    """agent id -> the agent's name (its id as text when it has none)."""
    agents = rec.header.get("agents") or []
    return {a["agent_id"]: str(a.get("name") or a["agent_id"]) for a in agents if isinstance(a.get("agent_id"), int)}


def fees(rec: Recording) -> dict[str, Any] | None:
    """Exchange fees of the run from the ``trade`` events' ``buyer_fee`` and ``seller_fee``
    (currency units): ``total``, ``buyers``, ``sellers``, ``by_agent`` {name: fees paid} and the
    ``house`` account of ``simulation_end`` ({cash, holdings}; None if not recorded). None for a
    recording whose trades carry no fee fields (recorded before fees were on the record)."""
    trades = rec.trades
    end = rec.table("simulation_end")
    house = None
    if len(end) and "house" in end and isinstance(end["house"].iloc[-1], Mapping):
        house = dict(end["house"].iloc[-1])
    if len(trades) and not {"buyer_fee", "seller_fee"} <= set(trades.columns):
        return None
    money = money_of(rec)
    paid: dict[int, int] = {}
    buyers = sellers = 0
    if len(trades):
        # sums in currency units (every fee is on the tick), each converted once through Money
        fb = pd.to_numeric(trades["buyer_fee"], errors="coerce").fillna(0.0)
        fs = pd.to_numeric(trades["seller_fee"], errors="coerce").fillna(0.0)
        buyers, sellers = money.round_to_tick(float(fb.sum())), money.round_to_tick(float(fs.sum()))
        by_agent = pd.concat(
            [fb.groupby(trades["buyer_id"].astype(int)).sum(), fs.groupby(trades["seller_id"].astype(int)).sum()]
        ).groupby(level=0).sum()
        paid = {int(a): money.round_to_tick(float(v)) for a, v in by_agent.items()}
    names = _names(rec)
    return {
        "total": money.to_units(buyers + sellers),
        "buyers": money.to_units(buyers),
        "sellers": money.to_units(sellers),
        "by_agent": {names.get(a, str(a)): money.to_units(t) for a, t in sorted(paid.items()) if t},
        "house": house,
    }


def _last_prices(rec: Recording) -> dict[str, float]:
    """Each good's last clearing price, else its header reference price (currency units)."""
    out: dict[str, float] = {}
    for good, spec in (rec.header.get("goods") or {}).items():
        reference = finite(spec.get("reference_price")) if isinstance(spec, Mapping) else None
        if reference is not None:
            out[str(good)] = reference
    clearings = rec.clearings
    if len(clearings):
        priced = clearings.dropna(subset=["price"]).sort_values("step", kind="stable")
        for good, price in zip(priced["good"], priced["price"], strict=True):
            out[str(good)] = float(price)
    return out


def pnl(rec: Recording) -> dict[str, Any] | None:
    """Each agent's P&L: final cash minus endowed cash, plus the change in holdings marked at the
    last price (so a price move alone is no P&L; fees paid count, and so do endowments added by
    timeline events). ``by_agent`` {name: P&L}, ``by_population`` {label: {agents, total, mean}},
    ``total`` (zero-sum trading nets to minus the fees). None without final agent states."""
    final = _final_agent_states(rec)
    if final.empty or "cash" not in final:
        return None
    prices = _last_prices(rec)
    money = money_of(rec)
    header = {a["agent_id"]: a for a in rec.header.get("agents") or [] if isinstance(a.get("agent_id"), int)}
    names = _names(rec)
    by_agent: dict[str, float] = {}
    by_population: dict[str, dict[str, Any]] = {}
    total = 0.0
    for agent_id, cash, holdings in final[["agent_id", "cash", "holdings"]].itertuples(index=False):
        agent = header.get(int(agent_id))
        if agent is None or finite(cash) is None:
            continue
        endowment = agent.get("endowment") or {}
        held = holdings if isinstance(holdings, Mapping) else {}
        had = endowment.get("holdings") or {}
        value = float(cash) - float(endowment.get("cash") or 0.0)
        for good in set(held) | set(had):
            value += (float(held.get(good, 0)) - float(had.get(good, 0))) * prices.get(good, 0.0)
        value = round(value, money.decimals + 2)
        by_agent[names.get(int(agent_id), str(agent_id))] = value
        label = str(agent.get("population"))
        entry = by_population.setdefault(label, {"agents": 0, "total": 0.0})
        entry["agents"] += 1
        entry["total"] = round(entry["total"] + value, money.decimals + 2)
        total += value
    for entry in by_population.values():
        entry["mean"] = entry["total"] / entry["agents"]
    return {"by_agent": by_agent, "by_population": by_population, "total": round(total, money.decimals + 2)}
