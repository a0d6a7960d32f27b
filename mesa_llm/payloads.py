"""What the run records: the contents of the ``simulation_start`` header, ``clearing``, ``trade``
and ``agent_state`` events, built from the world's parts (money in currency units, quantities as
integers: the recording contract, docs/architecture/recording-contract.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.market import Ledger, Money
    from mesa_llm.world.exchange import Clearing, Exchange, Trade


def simulation_start(model: Any) -> dict[str, Any]:
    """The ``simulation_start`` header of a model just built: the resolved scenario (without URL
    credentials), seed, horizon, tick size, versions, goods, the competitive equilibrium, every agent
    with its private values and endowment, the LLM side, notices, outcome spaces and rules."""
    from mesa_llm.run_summary import versions

    scenario, money = model.scenario, model.money
    return {
        "scenario": {
            "name": scenario.name,
            "spec": model.llm.public_spec(),  # no api_base credentials
            "source_dir": str(scenario.source_dir) if scenario.source_dir else None,
        },
        "parent": model.parent,
        "seed": model.seed_value,
        "steps": model.max_steps,
        "tick_size": money.tick_size,
        "versions": versions(),
        "plugins": scenario.plugins_used(),  # (group, name, distribution, version) of each
        "goods": goods_header(model.exchange, money),
        "competitive_equilibrium": model.tallies.equilibrium_report(),
        "agents": agents_header(model.traders, model.exchange.ledger, money),
        "llm": model.llm_header(),
        "notices": list(model.notices),
        "negotiation": {"spaces": {n: sp.to_dict() for n, sp in model.desk.spaces.items()} if model.desk else {}},
        "rules": model.rules.view(),
    }


def agents_header(traders: Sequence[TraderAgent], ledger: Ledger, money: Money) -> list[dict[str, Any]]:
    """Every agent as the header lists it: role, population, policy, private values, endowment."""
    to_units = money.to_units
    agents = []
    for a in traders:
        account = ledger.account(a.unique_id)
        agents.append(
            {
                "agent_id": a.unique_id,
                "name": a.name,
                "role": a.role.value,
                "population": a.population,
                "policy": a.policy.name,
                "policy_params": a.policy.params.model_dump(mode="json"),
                "model": a.persona.model,
                "private": {
                    good: {
                        "values": [to_units(v) for v in pv.values],
                        "costs": [to_units(c) for c in pv.costs],
                        "fundamental": to_units(pv.fundamental) if pv.fundamental is not None else None,
                    }
                    for good, pv in a.private.items()
                },
                "endowment": {"cash": to_units(account.cash), "holdings": dict(account.holdings)},
                "utilities": {space: u.to_dict() for space, u in a.utilities.items()},
            }
        )
    return agents


def goods_header(exchange: Exchange, money: Money) -> dict[str, dict[str, float]]:
    """Each good's reference price and admissible range (currency units)."""
    to_units = money.to_units
    return {
        name: {
            "reference_price": to_units(s.reference_price),
            "min_price": to_units(s.min_price),
            "max_price": to_units(s.max_price),
        }
        for name, s in exchange.goods.items()
    }


def clearing_record(c: Clearing, money: Money, fundamental: float | None) -> dict[str, Any]:
    """A ``clearing`` event: price, volume, clearing range, order counts, the spread left after it
    and the mean fundamental value the prices are read against."""
    to_units = money.to_units
    return {
        "good": c.good,
        "price": to_units(c.price) if c.price is not None else None,
        "volume": c.volume,
        "price_range": (
            [to_units(c.price_low), to_units(c.price_high)]
            if c.price_low is not None and c.price_high is not None
            else None
        ),
        "excess_demand": c.excess_demand,
        "excess_supply": c.excess_supply,
        "buy_orders": c.buy_orders,
        "sell_orders": c.sell_orders,
        "bid_after": to_units(c.bid_after) if c.bid_after is not None else None,
        "ask_after": to_units(c.ask_after) if c.ask_after is not None else None,
        # the mean fundamental value now (after shocks and stress events): the line prices are
        # read against, recorded because volatility spikes draw it at random
        "fundamental": fundamental,
    }


def trade_record(t: Trade, money: Money) -> dict[str, Any]:
    """A ``trade`` event: good, price, quantity, the parties, their orders and fees."""
    to_units = money.to_units
    return {
        "good": t.good,
        "price": to_units(t.price),
        "quantity": t.quantity,
        "buyer_id": t.buyer_id,
        "seller_id": t.seller_id,
        "buy_order_id": t.buy_order_id,
        "sell_order_id": t.sell_order_id,
        "buyer_fee": to_units(t.buyer_fee),
        "seller_fee": to_units(t.seller_fee),
    }


def agent_state_record(agent: TraderAgent, ledger: Ledger, money: Money, surplus: int, wealth: float) -> dict[str, Any]:
    """An ``agent_state`` event: cash, holdings, reserved cash, units traded, surplus and wealth."""
    to_units = money.to_units
    account = ledger.account(agent.unique_id)
    return {
        "cash": to_units(account.cash),
        "holdings": dict(account.holdings),
        "reserved_cash": to_units(account.reserved_cash),
        "units_bought": dict(agent.units_bought),
        "units_sold": dict(agent.units_sold),
        "surplus": to_units(surplus),
        "wealth": wealth,
    }


def mean_fundamental(traders: Sequence[TraderAgent], good: str, money: Money) -> float | None:
    """The mean of the agents' fundamental values of ``good`` (units), None when none has one."""
    values = [pv.fundamental for a in traders if (pv := a.private.get(good)) is not None and pv.fundamental is not None]
    if not values:
        return None
    return round(money.to_units(1) * sum(values) / len(values), 6)


def house_record(ledger: Ledger, money: Money, house: Any) -> dict[str, Any]:
    """The house account at the end (fees and fines): with it every agent's cash reconciles."""
    account = ledger.account(house)
    return {"cash": money.to_units(account.cash), "holdings": dict(account.holdings)}


def by_id(traders: Sequence[TraderAgent]) -> Mapping[int, TraderAgent]:
    """Agents by id, in creation order."""
    return {a.unique_id: a for a in traders}


__all__ = [
    "agent_state_record",
    "simulation_start",
    "agents_header",
    "by_id",
    "clearing_record",
    "goods_header",
    "house_record",
    "mean_fundamental",
    "trade_record",
]
