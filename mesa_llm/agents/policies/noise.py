"""A noise trader: trades at random, around the last price, some of the time."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, Decision, PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies.base import DecisionPolicy, PolicyParams


class NoiseParams(PolicyParams):
    """Parameters of the noise trader."""

    activity: float = Field(default=0.5, ge=0, le=1, description="probability of trading a good in a step")
    sigma: float = Field(default=0.02, ge=0, description="log-normal spread of its limit prices")
    max_size: int = Field(default=3, gt=0, description="largest order")


class NoiseTrader(DecisionPolicy):
    """Random side, size and limit price (log-normal around the last price)."""

    name: ClassVar[str] = "noise"
    summary: ClassVar[str] = "random side, size and price around the last price"
    Params: ClassVar[type[PolicyParams]] = NoiseParams

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        p: NoiseParams = self.params  # type: ignore[assignment]
        account = observation.account
        actions: list[ActionBase] = []
        for good, snap in observation.market.goods.items():
            # draw everything up front so the number of draws per step does not depend on state
            active, buy, size, shock = (
                rng.random() < p.activity,
                rng.random() < 0.5,
                int(rng.integers(1, p.max_size + 1)),
                rng.normal(0.0, p.sigma),
            )
            if not active:
                continue
            price = observation.snap(observation.market.price(good) * float(np.exp(shock)))
            price = min(max(price, snap.min_price), snap.max_price)
            if buy:
                size = min(size, int(account.available_cash // price))
                if size > 0:
                    actions.append(PlaceOrder(good=good, side="buy", price=price, quantity=size))
            else:
                size = min(size, account.available_goods.get(good, 0))
                if size > 0:
                    actions.append(PlaceOrder(good=good, side="sell", price=price, quantity=size))
        return Decision(actions=actions)
