"""A fundamental (value) trader: buys below its private estimate of value, sells above it."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, Decision, PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies.base import DecisionPolicy, PolicyParams


class FundamentalParams(PolicyParams):
    """Parameters of the fundamental trader."""

    threshold: float = Field(default=0.02, gt=0, description="relative mispricing that triggers a trade")
    size: int = Field(default=5, gt=0, description="largest order, reached at 4x the threshold")
    aggressiveness: float = Field(
        default=0.5, ge=0, le=1, description="limit price: 0 = last price, 1 = own value estimate"
    )


class FundamentalTrader(DecisionPolicy):
    """Trades towards its private ``fundamental`` value; order size grows with the mispricing."""

    name: ClassVar[str] = "fundamental"
    summary: ClassVar[str] = "buys below / sells above a private value estimate"
    Params: ClassVar[type[PolicyParams]] = FundamentalParams

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        p: FundamentalParams = self.params  # type: ignore[assignment]
        account = observation.account
        actions: list[ActionBase] = []
        for good, private in observation.private.items():
            value = private.fundamental
            if value is None or good not in observation.market.goods:
                continue
            snap = observation.market.goods[good]
            price = observation.market.price(good)
            gap = (value - price) / value
            if abs(gap) < p.threshold:
                continue
            quantity = min(p.size, max(1, int(p.size * abs(gap) / (4 * p.threshold))))
            limit = observation.snap(price + p.aggressiveness * (value - price))
            limit = min(max(limit, snap.min_price), snap.max_price)
            if gap > 0:
                quantity = min(quantity, int(account.available_cash // limit))
                if quantity > 0:
                    actions.append(PlaceOrder(good=good, side="buy", price=limit, quantity=quantity))
            else:
                quantity = min(quantity, account.available_goods.get(good, 0))
                if quantity > 0:
                    actions.append(
                        PlaceOrder(good=good, side="sell", price=limit, quantity=quantity)
                    )
        return Decision(actions=actions)
