"""Builds one run's world parts from its scenario: the market rules and exchange (goods' price
ranges in ticks), the mailbox, alliances and reputation. The agents come from
`mesa_llm.populations`; the model ties them together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesa_llm.social import AllianceRegistry, Mailbox, Reputation
from mesa_llm.world.exchange import Exchange
from mesa_llm.world.regulation import MarketRules

if TYPE_CHECKING:
    from mesa_llm.market import Money
    from mesa_llm.scenario import ScenarioSpec


def build_exchange(scenario: ScenarioSpec, money: Money) -> tuple[MarketRules, Exchange]:
    """The hard rules (caps, floors, position limits, fines) and the exchange of the scenario's goods
    (a good without bounds trades between 1 tick and ten times its reference price)."""
    to_ticks = money.to_ticks
    goods = []
    for g in scenario.goods:
        lo = to_ticks(g.min_price) if g.min_price is not None else 1
        hi = to_ticks(g.max_price) if g.max_price is not None else max(to_ticks(g.reference_price) * 10, lo + 1)
        goods.append((g.name, to_ticks(g.reference_price), lo, hi))
    spec = scenario.rules
    rules = MarketRules(
        money,
        price_caps={g: to_ticks(p) for g, p in spec.price_caps.items()},
        price_floors={g: to_ticks(p) for g, p in spec.price_floors.items()},
        position_limits=dict(spec.position_limits),
        max_fine=to_ticks(spec.max_fine) if spec.max_fine is not None else None,
    )
    market = scenario.market
    exchange = Exchange(
        goods,
        money,
        rules=rules,
        k=market.k,
        fee_per_unit=money.round_to_tick(market.fee_per_unit),
        max_orders_per_step=market.max_orders_per_step,
        price_history=market.price_history,
    )
    return rules, exchange


def build_social(scenario: ScenarioSpec) -> tuple[Mailbox, AllianceRegistry, Reputation]:
    """The mailbox, the alliance registry and the reputation table (agents registered later)."""
    rep = scenario.social.reputation
    reputation = Reputation(
        initial=rep.initial,
        fulfilled_gain=rep.fulfilled_gain,
        breach_loss=rep.breach_loss,
        fine_loss=rep.fine_loss,
        flag_loss=rep.flag_loss,
    )
    return Mailbox(), AllianceRegistry(), reputation


__all__ = ["build_exchange", "build_social"]
