"""Gode & Sunder's zero-intelligence traders: ZI-C (budget-constrained) and ZI-U (unconstrained).

Each step a ZI trader offers its next untraded unit of each good it has a schedule for, at a price
drawn uniformly at random: ZI-C never bids above the unit's value nor asks below its cost; ZI-U
draws from the whole admissible price range. (Gode & Sunder 1993, JPE 101(1).)
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, Decision, PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies.base import BatchDrawPolicy, PolicyParams
from mesa_llm.agents.roles import Role

_SIDES: dict[str, tuple[bool, bool]] = {role.value: (role.may_buy, role.may_sell) for role in Role}


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """``rng.uniform(low, high)`` for finite floats, the same number from the same draw: numpy
    computes ``low + (high - low) * rng.random()`` in doubles too, but its scalar call costs
    four times as much (argument broadcasting), once per agent and step."""
    return low + (high - low) * rng.random()


class ZIParams(PolicyParams):
    """Parameters of the zero-intelligence traders."""

    quantity: int = Field(default=1, gt=0, description="units per order")


#: one order a ZI trader prices this step: (good, side, quantity, low, high), its price drawn in [low, high]
Offer = tuple[str, str, int, float, float]

#: the orders made so far, by (good, side, price, quantity): a frozen action equal to a new one
#: is used again (validating a new one costs more than the rest of a ZI decision)
_ORDERS: dict[tuple[str, str, float, int], PlaceOrder] = {}
_ORDERS_KEPT = 1 << 16


def _order(good: str, side: str, price: float, quantity: int) -> PlaceOrder:
    """``PlaceOrder(good=good, side=side, price=price, quantity=quantity)``, made once per key."""
    key = (good, side, price, quantity)
    order = _ORDERS.get(key)
    if order is None:
        if len(_ORDERS) >= _ORDERS_KEPT:
            _ORDERS.clear()
        order = _ORDERS[key] = PlaceOrder(good=good, side=side, price=price, quantity=quantity)  # type: ignore[arg-type]
    return order


class _ZeroIntelligence(BatchDrawPolicy):
    Params: ClassVar[type[PolicyParams]] = ZIParams
    constrained: ClassVar[bool] = True

    def plan(self, observation: Observation) -> tuple[list[Offer], int, Exception | None]:
        """The orders to price, in draw order (per good: the buy, then the sell), one draw each."""
        offers: list[Offer] = []
        try:
            quantity = self.params.quantity  # type: ignore[attr-defined]
            role_may_buy, role_may_sell = _SIDES[observation.role]
            goods, constrained = observation.market.goods, self.constrained
            for good, private in observation.private.items():
                snap = goods[good]
                lo, hi = snap.min_price, snap.max_price
                if role_may_buy and private.values:
                    q = min(quantity, private.values_left, len(private.values))
                    # the order's last unit has the lowest value: bidding above it could lose money
                    top = min(private.values[q - 1], hi) if constrained else hi
                    if top >= lo:
                        offers.append((good, "buy", q, lo, top))
                if role_may_sell and private.costs:
                    q = min(quantity, private.costs_left, len(private.costs), observation.account.available_goods.get(good, 0))
                    if q > 0:
                        bottom = max(private.costs[q - 1], lo) if constrained else lo
                        if bottom <= hi:
                            offers.append((good, "sell", q, bottom, hi))
        except Exception as exc:  # noqa: BLE001 - raised after the draws before it, as one at a time
            return offers, len(offers), exc
        return offers, len(offers), None

    def decide_drawn(self, observation: Observation, plan: list[Offer], draws: list[float]) -> Decision:
        """Each offer priced at ``low + (high - low) * draw`` (``rng.uniform(low, high)``'s number)
        snapped to the tick (`Observation.snap`); a bid the agent's cash cannot cover is left out."""
        actions: list[ActionBase] = []
        constrained, tick = self.constrained, observation.tick_size
        for (good, side, q, low, high), u in zip(plan, draws, strict=True):
            price = _on_tick(max(round((low + (high - low) * u) / tick), 1), tick)
            if side == "buy":
                price = min(price, high) if constrained else price
                if not price * q <= observation.account.available_cash:
                    continue
            elif constrained:
                price = max(price, low)
            actions.append(_order(good, side, price, q))
        return Decision(actions=actions)


#: ``round(ticks * tick, 10)`` by (ticks, tick): the second half of `Observation.snap`, made once per price
_PRICES: dict[tuple[int, float], float] = {}


def _on_tick(ticks: int, tick: float) -> float:
    key = (ticks, tick)
    price = _PRICES.get(key)
    if price is None:
        if len(_PRICES) >= _ORDERS_KEPT:
            _PRICES.clear()
        price = _PRICES[key] = round(ticks * tick, 10)
    return price


class ZeroIntelligenceConstrained(_ZeroIntelligence):
    """ZI-C: random prices that never lose money on a unit (bid <= value, ask >= cost)."""

    name: ClassVar[str] = "zi_c"
    summary: ClassVar[str] = "Gode-Sunder ZI-C: random bid <= value / ask >= cost"
    constrained: ClassVar[bool] = True


class ZeroIntelligenceUnconstrained(_ZeroIntelligence):
    """ZI-U: random prices over the whole admissible range, ignoring values and costs."""

    name: ClassVar[str] = "zi_u"
    summary: ClassVar[str] = "Gode-Sunder ZI-U: random prices over the whole range"
    constrained: ClassVar[bool] = False
