"""A trader that quotes the reference price: the ``sample_reference_trader`` policy."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, Decision, PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies import DecisionPolicy, PolicyParams


class ReferenceParams(PolicyParams):
    """Parameters of the reference-price trader."""

    quantity: int = Field(default=1, gt=0, description="units per order")


class ReferenceTrader(DecisionPolicy):
    """Bids (buyers) or asks (sellers) the reference price for its next unit, when that unit
    gains at that price and the agent can pay or deliver."""

    name: ClassVar[str] = "sample_reference_trader"
    summary: ClassVar[str] = "bids and asks at the reference price (sample plugin)"
    Params: ClassVar[type[PolicyParams]] = ReferenceParams

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        if "place_order" not in observation.available_actions:
            return Decision()
        quantity: int = self.params.quantity  # type: ignore[attr-defined]
        actions: list[ActionBase] = []
        for good, private in observation.private.items():
            price = observation.snap(observation.market.goods[good].reference_price)
            if private.values and private.values[0] >= price and price * quantity <= observation.account.available_cash:
                actions.append(PlaceOrder(good=good, side="buy", price=price, quantity=quantity))
            if private.costs and private.costs[0] <= price and observation.account.available_goods.get(good, 0) >= quantity:
                actions.append(PlaceOrder(good=good, side="sell", price=price, quantity=quantity))
        return Decision(actions=actions)
