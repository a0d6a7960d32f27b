"""A momentum (trend-following) trader: buys after rises, sells after falls."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, Decision, PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies.base import DecisionPolicy, PolicyParams


class MomentumParams(PolicyParams):
    """Parameters of the momentum trader."""

    lookback: int = Field(default=5, ge=1, description="steps over which the trend is measured")
    threshold: float = Field(default=0.01, ge=0, description="relative move that triggers a trade")
    size: int = Field(default=3, gt=0, description="units per order")
    aggressiveness: float = Field(
        default=0.01, ge=0, lt=1, description="limit price beyond the last price, relative"
    )


class MomentumTrader(DecisionPolicy):
    """Follows the price trend over ``lookback`` clearings, paying up to cross the spread."""

    name: ClassVar[str] = "momentum"
    summary: ClassVar[str] = "follows the price trend over a lookback window"
    Params: ClassVar[type[PolicyParams]] = MomentumParams

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        p: MomentumParams = self.params  # type: ignore[assignment]
        account = observation.account
        actions: list[ActionBase] = []
        for good, snap in observation.market.goods.items():
            history = snap.price_history
            if len(history) <= p.lookback:
                continue
            past, last = history[-1 - p.lookback], history[-1]
            trend = (last - past) / past
            if trend > p.threshold:
                limit = min(observation.snap(last * (1 + p.aggressiveness)), snap.max_price)
                quantity = min(p.size, int(account.available_cash // limit))
                if quantity > 0:
                    actions.append(PlaceOrder(good=good, side="buy", price=limit, quantity=quantity))
            elif trend < -p.threshold:
                limit = max(observation.snap(last * (1 - p.aggressiveness)), snap.min_price)
                quantity = min(p.size, account.available_goods.get(good, 0))
                if quantity > 0:
                    actions.append(
                        PlaceOrder(good=good, side="sell", price=limit, quantity=quantity)
                    )
        return Decision(actions=actions)
