"""Scenario sanity: populations that cannot act as their role implies, found before a run.

A scenario can be valid (every field well typed) and still not mean what its author thinks: sellers
with nothing to sell never trade on the sell side, yet the run reports an efficiency. These checks
read only the validated spec (no model, no random draws) and return one line per problem, which
`validate` and `run` print as warnings. Holdings or cash a timeline ``endow`` event gives a
population later count as having them.
"""

from __future__ import annotations

from mesa_llm.agents.roles import Role
from mesa_llm.scenario import Constant, Endow, PopulationSpec, ScenarioSpec, Uniform, ValueSource

__all__ = ["sanity_warnings"]

_AUCTIONS = frozenset({"first_price", "second_price", "english"})


def _label(population: PopulationSpec) -> str:
    return population.name or population.role.value


def _endowed_later(spec: ScenarioSpec, label: str) -> tuple[bool, set[str]]:
    """Whether a timeline ``endow`` event gives the population cash, and which goods it gives."""
    cash = False
    goods: set[str] = set()
    for event in spec.timeline:
        if isinstance(event, Endow) and (not event.populations or label in event.populations):
            cash = cash or event.cash > 0
            goods.update(g for g, q in event.holdings.items() if q > 0)
    return cash, goods


def _bounds(source: ValueSource | None) -> tuple[float, float] | None:
    """The smallest and largest value a distribution can draw, where it is bounded."""
    if isinstance(source, int | float):
        return float(source), float(source)
    if isinstance(source, list):
        return (min(source), max(source)) if source else None
    if isinstance(source, Constant):
        return source.value, source.value
    if isinstance(source, Uniform):
        return source.low, source.high
    low, high = getattr(source, "min", None), getattr(source, "max", None)
    if low is not None and high is not None:
        return float(low), float(high)
    options = getattr(source, "options", None)
    if options:
        return min(options), max(options)
    return None


def sanity_warnings(spec: ScenarioSpec) -> list[str]:
    """One line per population that cannot act as its role implies, and per good whose
    competitive equilibrium (and so allocative efficiency) is undefined though induced values
    or costs say efficiency is expected."""
    out: list[str] = []
    market_goods = [g.name for g in spec.goods]
    trading = spec.market.call_market or bool(spec.negotiation.sessions) or spec.negotiation.open_sessions
    for population in spec.populations:
        if population.count == 0 or not trading:
            continue
        label = _label(population)
        later_cash, later_goods = _endowed_later(spec, label)
        holdings = {g for g, q in population.endowment.holdings.items() if q > 0} | later_goods
        cash = population.endowment.cash > 0 or population.credit_limit > 0 or later_cash
        shorting = population.short_limit > 0
        role = population.role
        costed = [g for g, p in population.private.items() if p.costs is not None]
        if role is Role.SELLER or costed:
            # a seller sells the goods it has costs for (or, without costs, any market good)
            to_sell = costed or market_goods
            missing = [g for g in to_sell if g not in holdings]
            if missing and not shorting and (costed or not holdings):
                out.append(
                    f"population {label!r} ({role.value}) has no {', '.join(missing)} to sell: "
                    f"give it endowment.holdings (it will never trade on the sell side)"
                )
        valued = [g for g, p in population.private.items() if p.values is not None]
        if (role is Role.BUYER or valued) and not cash:
            out.append(
                f"population {label!r} ({role.value}) has no cash to buy with: give it endowment.cash "
                f"(it will never trade on the buy side)"
            )
        if role is Role.MARKET_MAKER and not cash and not holdings and not shorting:
            out.append(
                f"population {label!r} (market_maker) has neither cash nor holdings: it cannot quote either side"
            )
    out.extend(_equilibrium_warnings(spec))
    return out


def _equilibrium_warnings(spec: ScenarioSpec) -> list[str]:
    """Goods with induced values or costs whose competitive equilibrium is undefined."""
    out = []
    goods = {g.name for g in spec.goods}
    if not spec.market.call_market:
        # a good only auctioned has bidders' values and no induced costs by design: an auction's
        # efficiency is whether the highest value wins, not a market's competitive equilibrium
        auctioned = {s.good for s in spec.negotiation.sessions if s.protocol in _AUCTIONS}
        traded = {s.good for s in spec.negotiation.sessions if s.protocol not in _AUCTIONS}
        goods -= auctioned - traded
    for good in sorted({g for p in spec.populations if p.count for g in p.private} & goods):
        values = [p.private[good].values for p in spec.populations if p.count and good in p.private]
        costs = [p.private[good].costs for p in spec.populations if p.count and good in p.private]
        has_values = any(v is not None for v in values)
        has_costs = any(c is not None for c in costs)
        if not has_values and not has_costs:
            continue  # a fundamental only: no induced-value market, no efficiency expected
        if has_values != has_costs:
            side, other = ("values", "costs") if has_values else ("costs", "values")
            out.append(
                f"good {good!r} has induced {side} but no induced {other}: its competitive equilibrium "
                f"and allocative efficiency are undefined"
            )
            continue
        highs = [b[1] for b in map(_bounds, values) if b is not None]
        lows = [b[0] for b in map(_bounds, costs) if b is not None]
        bounded = len(highs) == sum(v is not None for v in values) and len(lows) == sum(c is not None for c in costs)
        if bounded and max(highs) < min(lows):
            out.append(
                f"good {good!r}: every induced value (at most {max(highs):g}) is below every cost "
                f"(at least {min(lows):g}): no unit can trade at the competitive equilibrium"
            )
    return out
