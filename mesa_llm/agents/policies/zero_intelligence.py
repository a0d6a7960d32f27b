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
from mesa_llm.agents.policies.base import DecisionPolicy, PolicyParams
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


class _ZeroIntelligence(DecisionPolicy):
    Params: ClassVar[type[PolicyParams]] = ZIParams
    constrained: ClassVar[bool] = True

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        actions: list[ActionBase] = []
        quantity = self.params.quantity  # type: ignore[attr-defined]
        role_may_buy, role_may_sell = _SIDES[observation.role]
        account = observation.account
        constrained, snap = self.constrained, observation.snap
        for good, private in observation.private.items():
            market = observation.market.goods[good]
            lo, hi = market.min_price, market.max_price
            if role_may_buy and private.values:
                q = min(quantity, private.values_left, len(private.values))
                # the order's last unit has the lowest value: bidding above it could lose money
                top = min(private.values[q - 1], hi) if constrained else hi
                if top >= lo:
                    price = snap(_uniform(rng, lo, top))
                    price = min(price, top) if constrained else price
                    if price * q <= account.available_cash:
                        actions.append(PlaceOrder(good=good, side="buy", price=price, quantity=q))
            if role_may_sell and private.costs:
                q = min(quantity, private.costs_left, len(private.costs), account.available_goods.get(good, 0))
                if q > 0:
                    bottom = max(private.costs[q - 1], lo) if constrained else lo
                    if bottom <= hi:
                        price = snap(_uniform(rng, bottom, hi))
                        price = max(price, bottom) if constrained else price
                        actions.append(PlaceOrder(good=good, side="sell", price=price, quantity=q))
        return Decision(actions=actions)


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
