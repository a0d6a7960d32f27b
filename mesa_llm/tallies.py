"""The market's running tallies: trades, volume, prices, contracts, fees, the competitive
equilibrium and the induced-value surplus of a run, fed with its ``trade`` and ``contract`` events.

Running totals only (exact integer sums, never a list of prices), so a run's memory does not grow
with its trades. The same economics (:mod:`mesa_llm.economics`) serves ``mesa-llm analyze``, which
folds the recorded events the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mesa_llm.agents.trader import record_fills
from mesa_llm.economics import (
    CompetitiveEquilibrium,
    Efficiency,
    InducedSurplus,
    competitive_equilibrium,
    efficiency,
)
from mesa_llm.run_summary import PriceStats

if TYPE_CHECKING:
    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.market import Money


def equilibria(goods: Sequence[str], agents: Sequence[TraderAgent]) -> dict[str, CompetitiveEquilibrium]:
    """Each good's competitive equilibrium over the units agents have not traded yet."""
    out = {}
    for good in goods:
        values: list[int] = []
        costs: list[int] = []
        for agent in agents:
            pv = agent.private.get(good)
            if pv is None:
                continue
            values.extend(pv.values[agent.units_bought.get(good, 0) :])
            costs.extend(pv.costs[agent.units_sold.get(good, 0) :])
        out[good] = competitive_equilibrium(values, costs)
    return out


class TradeEvents(list[Any]):
    """A clearing's events (``(event_type, content, agent_id, text)`` items in order, as
    `record_batch.record_many` takes them: the clearings and their trades, no agent's) that carry
    their trades for the tallies too: ``fills`` holds per clearing that traded its good, price
    (ticks and units) and trades (each with ``quantity``, ``buyer_id``, ``seller_id``, ``buyer_fee``
    and ``seller_fee`` in ticks, as the ``trade`` items' contents say). `record_many` counts them
    at once (`MarketTallies.on_trades`) when nobody is handed an event of the batch as it is
    recorded; else each ``trade`` item is counted in its place (`MarketTallies.on_event`)."""

    __slots__ = ("fills",)

    def __init__(self) -> None:  # noqa: D107 - the class says it
        super().__init__()
        #: None: a clearing's trades not all at its price (each counted from its event)
        self.fills: list[tuple[str, int, float, Sequence[Any]]] | None = []


class MarketTallies:
    """Running totals of one run's market (ticks and units), fed with its settlement events."""

    def __init__(self, goods: Sequence[str], money: Money, agents: Mapping[int, TraderAgent]) -> None:
        """``agents`` maps ids to agents: a fill counts the induced values its units consume
        (asked of the agents before they count the units as traded)."""
        self.money = money
        self.agents = agents
        #: this step's trades and units (the DataCollector's ``trades`` and ``volume``)
        self.step_trades = 0
        self.step_volume = 0
        #: the run's trades and units in the call market
        self.trades = 0
        self.volume = 0
        #: fees paid to the house by trades, by buyers and by sellers (ticks)
        self.buyer_fees = 0
        self.seller_fees = 0
        self.trade_value: dict[str, int] = {g: 0 for g in goods}
        self.trade_units: dict[str, int] = {g: 0 for g in goods}
        #: running aggregates of each good's trade prices (Smith's alpha without the price list)
        self.price_stats: dict[str, PriceStats] = {g: PriceStats() for g in goods}
        #: units moved by fulfilled contracts, per good
        self.contract_units: dict[str, int] = {}
        self.induced_surplus = InducedSurplus()
        self.induced = any(pv.values or pv.costs for a in agents.values() for pv in a.private.values())
        self.goods = list(goods)
        self.equilibria = equilibria(self.goods, list(agents.values()))
        #: the equilibrium at the start of the run
        self.initial_equilibria = self.equilibria
        #: the most surplus the run could still realise (ticks): the initial maximum, re-based at
        #: every value/cost shock to what was realised so far plus the new equilibrium's maximum
        self.surplus_benchmark = sum(eq.max_surplus for eq in self.equilibria.values())

    # ------------------------------------------------------------------ fed by events

    def begin_step(self) -> None:
        """Start the step's counts."""
        self.step_trades = 0
        self.step_volume = 0

    def on_event(self, event_type: str, content: Mapping[str, Any], step: int) -> None:
        """Count one recorded event: a ``trade`` of the call market, or a fulfilled ``contract``
        (``content`` may be a function making it: a call market's trade, made only if needed)."""
        if callable(content):
            content = content()
        if event_type == "trade":
            price = self.money.to_ticks(content["price"])
            good, quantity = content["good"], int(content["quantity"])
            self._fill(good, quantity, content["buyer_id"], content["seller_id"], price, float(content["price"]), step)
            self.step_trades += 1
            self.step_volume += quantity
            self.trades += 1
            self.volume += quantity
            self.trade_value[good] += price * quantity
            self.trade_units[good] += quantity
            self.price_stats[good].add(price)
            # no fee (0, 0.0 or none) is no ticks: only a fee is converted
            if fee := content.get("buyer_fee"):
                self.buyer_fees += self.money.to_ticks(fee)
            if fee := content.get("seller_fee"):
                self.seller_fees += self.money.to_ticks(fee)
        elif event_type == "contract" and content.get("stage") == "settled" and content.get("status") == "fulfilled":
            good = content.get("good")
            if good is None:
                return
            price = self.money.to_ticks(content["price"])
            quantity = int(content["quantity"])
            self._fill(good, quantity, content["buyer_id"], content["seller_id"], price, float(content["price"]), step)
            self.contract_units[good] = self.contract_units.get(good, 0) + quantity

    def on_trades(self, fills: Sequence[tuple[str, int, float, Sequence[Any]]], step: int) -> None:
        """`on_event` of the ``trade`` events of a `TradeEvents` batch (``fills``: per clearing its
        good, price in ticks and units, and trades), counted from their values in ticks: the same
        fills, in the same order, and the same totals."""
        surplus_fill, agents = self.induced_surplus.fill, self.agents
        for good, price, units, trades in fills:
            record_fills(trades, agents, good, price, units, step, surplus_fill)  # both parties of each, in order
            volume = buyer_fees = seller_fees = 0
            for trade in trades:
                volume += trade.quantity
                buyer_fees += trade.buyer_fee
                seller_fees += trade.seller_fee
            count = len(trades)
            self.step_trades += count
            self.step_volume += volume
            self.trades += count
            self.volume += volume
            self.trade_value[good] += price * volume
            self.trade_units[good] += volume
            stats = self.price_stats[good]  # `PriceStats.add` of each trade's price (all at ``price``)
            stats.count += count
            stats.total += count * price
            stats.total_sq += count * price * price
            self.buyer_fees += buyer_fees
            self.seller_fees += seller_fees

    @staticmethod
    def _fill_parties(buyer: TraderAgent, seller: TraderAgent, good: str, quantity: int, price: int, units: float,
                      step: int, surplus_fill: Any) -> None:  # fmt: skip
        """`_fill` of two parties already looked up (``surplus_fill``: the induced surplus's ``fill``)."""
        surplus_fill(good, quantity, buyer.induced_units(good, "buy", quantity), seller.induced_units(good, "sell", quantity))
        buyer.record_fill(good, "buy", quantity, price, units, step)
        seller.record_fill(good, "sell", quantity, price, units, step)

    def _fill(self, good: str, quantity: int, buyer_id: int, seller_id: int, price: int, units: float, step: int) -> None:
        """Count moved units for both parties and in the induced-value economy's surplus."""
        self._fill_parties(self.agents[buyer_id], self.agents[seller_id], good, quantity, price, units, step,
                           self.induced_surplus.fill)  # fmt: skip

    def rebase(self, field: str) -> None:
        """After a shock to a private ``field``: the new equilibrium and, when values or costs
        moved, the benchmark re-based to what was realised plus what is still possible."""
        self.equilibria = equilibria(self.goods, list(self.agents.values()))
        if field in ("values", "costs"):
            self.surplus_benchmark = self.induced_surplus.realised + sum(
                eq.max_surplus for eq in self.equilibria.values()
            )

    # ------------------------------------------------------------------ reading

    def efficiency_report(self) -> Efficiency:
        """Allocative efficiency so far (in [0, 1]) or None with the reason."""
        return efficiency(self.induced_surplus.realised, self.surplus_benchmark, induced=self.induced)

    def equilibrium_report(self) -> dict[str, dict[str, Any]]:
        """Competitive equilibrium per good in currency units (None where undefined)."""
        to_units = self.money.to_units
        tick = self.money.tick_size
        out = {}
        for good, eq in self.equilibria.items():
            out[good] = {
                "quantity": eq.quantity,
                "price_low": to_units(eq.price_low) if eq.price_low is not None else None,
                "price_high": to_units(eq.price_high) if eq.price_high is not None else None,
                "price": round(eq.price * tick, self.money.decimals + 1) if eq.price is not None else None,
                "max_surplus": to_units(eq.max_surplus),
            }
        return out

    def fees(self) -> dict[str, float]:
        """Fees paid to the house so far: total, buyers, sellers (currency units)."""
        to_units = self.money.to_units
        return {
            "total": to_units(self.buyer_fees + self.seller_fees),
            "buyers": to_units(self.buyer_fees),
            "sellers": to_units(self.seller_fees),
        }

    def goods_summary(self, last_prices: Mapping[str, int | None]) -> dict[str, dict[str, Any]]:
        """Per good: trades, volume, mean and last price, the initial equilibrium, Smith's alpha and
        contract volume (currency units)."""
        money = self.money
        out = {}
        for good in self.goods:
            eq = self.initial_equilibria[good]
            units = self.trade_units[good]
            last = last_prices.get(good)
            out[good] = {
                "trades": self.price_stats[good].count,
                "volume": units,
                "mean_price": round(self.trade_value[good] / units * money.tick_size, money.decimals + 2) if units else None,
                "last_price": money.to_units(last) if last is not None else None,
                "ce_price": round(eq.price * money.tick_size, money.decimals + 1) if eq.price is not None else None,
                # no equilibrium price (no induced values, or no unit can trade): no CE quantity either
                "ce_quantity": eq.quantity if eq.price is not None else None,
                "smiths_alpha": self.price_stats[good].smith_alpha(eq.price),
                "contract_volume": self.contract_units.get(good, 0),
            }
        return out


__all__ = ["MarketTallies", "TradeEvents", "equilibria"]
