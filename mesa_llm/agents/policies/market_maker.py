"""A market maker: quotes a bid and an ask around the last price, skewed against its inventory."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, Decision, PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies.base import DecisionPolicy, PolicyParams


class MarketMakerParams(PolicyParams):
    """Parameters of the market maker."""

    spread: float = Field(default=0.02, gt=0, lt=1, description="quoted spread, relative to mid")
    size: int = Field(default=5, gt=0, description="units quoted on each side")
    skew: float = Field(
        default=0.002, ge=0, description="mid shift per unit of inventory away from target"
    )
    max_inventory: int = Field(default=100, gt=0, description="stop bidding above this holding")
    goods: list[str] | None = Field(default=None, description="goods to quote (all if omitted)")


class MarketMaker(DecisionPolicy):
    """Quotes both sides of every good each step; leans its quotes to bring inventory back to target."""

    name: ClassVar[str] = "market_maker"
    summary: ClassVar[str] = "quotes bid/ask around the last price, inventory-skewed"
    Params: ClassVar[type[PolicyParams]] = MarketMakerParams

    def __init__(self, params: PolicyParams | None = None) -> None:
        super().__init__(params)
        self._target: dict[str, int] | None = None

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        p: MarketMakerParams = self.params  # type: ignore[assignment]
        account = observation.account
        if self._target is None:  # the inventory it starts with is the one it aims to keep
            self._target = dict(account.holdings)
        goods = p.goods if p.goods is not None else list(observation.market.goods)
        actions: list[ActionBase] = []
        cash_left = account.available_cash
        for good in goods:
            snap = observation.market.goods.get(good)
            if snap is None:
                continue
            inventory = account.holdings.get(good, 0)
            mid = observation.market.price(good) * (
                1.0 - p.skew * (inventory - self._target.get(good, 0))
            )
            bid = observation.snap(max(mid * (1 - p.spread / 2), snap.min_price))
            ask = observation.snap(min(mid * (1 + p.spread / 2), snap.max_price))
            if ask <= bid:
                ask = observation.snap(bid + observation.tick_size)
            bid_size = min(p.size, int(cash_left // bid)) if inventory < p.max_inventory else 0
            if bid_size > 0:
                actions.append(PlaceOrder(good=good, side="buy", price=bid, quantity=bid_size))
                cash_left -= bid * bid_size
            ask_size = min(p.size, account.available_goods.get(good, 0))
            if ask_size > 0 and ask <= snap.max_price:
                actions.append(PlaceOrder(good=good, side="sell", price=ask, quantity=ask_size))
        return Decision(actions=actions)
