"""Rewards: what a learner is paid after each step, computed from its balances
(`mesa_llm.Simulation.account`) and its next observation. Pluggable objects, one per environment,
holding each learner's previous value.

| name | per-step reward |
|---|---|
| ``pnl`` (default, markets) | change in mark-to-market wealth: cash + holdings at the last price; units of an induced-value schedule count at their induced value or cost (so in a double auction it is the realised surplus) |
| ``inventory`` | ``pnl`` minus ``weight`` x units held away from the starting inventory |
| ``risk_adjusted`` | ``pnl`` minus ``risk_aversion`` x ``pnl``² (mean-variance) |
| ``surplus`` | change in induced surplus: value of units bought - cost of units sold + net cash flow |
| ``utility`` (default, negotiation) | on each agreement, its utility to the agent minus its reservation value |
| ``price_surplus`` | on each agreement on a price, the surplus over the agent's reservation price (money) |

Every reward is multiplied by ``scale``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from mesa_llm.agents.observation import Observation
from mesa_llm.rl.codecs import CodecParams, session_utility
from mesa_llm.simulation import AccountState


class RewardParams(CodecParams):
    """Parameters every reward takes."""

    scale: float = Field(default=1.0, gt=0, allow_inf_nan=False, description="multiplies the reward")


def mark_to_market(account: AccountState) -> float:
    """Cash plus holdings at their marks; goods with an induced schedule count through the surplus
    their traded units realised (their value to the agent), not at the market price."""
    induced = set(account["induced"])
    held = sum(q * account["marks"][g] for g, q in account["holdings"].items() if q and g not in induced)
    return account["cash"] + account["realised_surplus"] + held


class Reward(ABC):
    """A reward function: `reset` at an episode's start, then `__call__` after every step."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[RewardParams]] = RewardParams

    def __init__(self, params: RewardParams | Mapping[str, Any] | None = None) -> None:
        self.params = params if isinstance(params, RewardParams) else self.Params.model_validate(dict(params or {}))
        self._last: dict[int, float] = {}
        self._start: dict[int, AccountState] = {}

    def describe(self) -> dict[str, Any]:
        """Name and parameters, as a checkpoint's sidecar records them."""
        return {"name": self.name, "params": self.params.model_dump(mode="json")}

    def reset(self, agent_id: int, account: AccountState, observation: Observation | None) -> None:
        """Remember where ``agent_id`` starts."""
        self._start[agent_id] = account
        self._last[agent_id] = self.value(agent_id, account, observation)

    def __call__(self, agent_id: int, account: AccountState, observation: Observation | None) -> float:
        """The reward of ``agent_id`` for the step just run (its balances and next observation)."""
        value = self.value(agent_id, account, observation)
        change = value - self._last.get(agent_id, value)
        self._last[agent_id] = value
        return float(self.shape(agent_id, change, account) * self.params.scale)

    @abstractmethod
    def value(self, agent_id: int, account: AccountState, observation: Observation | None) -> float:
        """The quantity whose change is paid."""

    def shape(self, agent_id: int, change: float, account: AccountState) -> float:
        """The paid reward from the change (penalties)."""
        return change


class PnL(Reward):
    """Change in mark-to-market wealth (see `mark_to_market`)."""

    name: ClassVar[str] = "pnl"

    def value(self, agent_id: int, account: AccountState, observation: Observation | None) -> float:
        return mark_to_market(account)


class InventoryParams(RewardParams):
    """Parameters of `InventoryPenalty`."""

    weight: float = Field(default=0.1, ge=0, allow_inf_nan=False, description="currency units per unit held away from the start, per step")


class InventoryPenalty(PnL):
    """PnL minus a per-step penalty on inventory away from the starting holdings."""

    name: ClassVar[str] = "inventory"
    Params: ClassVar[type[RewardParams]] = InventoryParams

    def shape(self, agent_id: int, change: float, account: AccountState) -> float:
        start = self._start[agent_id]["holdings"]
        away = sum(abs(q - start.get(g, 0)) for g, q in account["holdings"].items())
        return change - self.params.weight * away  # type: ignore[attr-defined]


class RiskParams(RewardParams):
    """Parameters of `RiskAdjusted`."""

    risk_aversion: float = Field(default=0.01, ge=0, allow_inf_nan=False, description="weight of the squared PnL")


class RiskAdjusted(PnL):
    """Mean-variance: PnL minus ``risk_aversion`` times its square."""

    name: ClassVar[str] = "risk_adjusted"
    Params: ClassVar[type[RewardParams]] = RiskParams

    def shape(self, agent_id: int, change: float, account: AccountState) -> float:
        return change - self.params.risk_aversion * change * change  # type: ignore[attr-defined]


class InducedSurplus(Reward):
    """Change in induced surplus (value of units bought - cost of units sold + net cash flow)."""

    name: ClassVar[str] = "surplus"

    def value(self, agent_id: int, account: AccountState, observation: Observation | None) -> float:
        return account["surplus"]


class AgreementUtility(Reward):
    """On each agreement the agent reaches: the agreed outcome's utility to it minus its
    reservation value (read from the session as its next observation shows it, so an agreement
    reached at an episode's very last step, which no observation follows, is not paid)."""

    name: ClassVar[str] = "utility"

    def __init__(self, params: RewardParams | Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._paid: dict[int, set[str]] = {}
        self._total: dict[int, float] = {}

    def reset(self, agent_id: int, account: AccountState, observation: Observation | None) -> None:
        self._paid[agent_id] = set()
        self._total[agent_id] = 0.0
        super().reset(agent_id, account, observation)

    def value(self, agent_id: int, account: AccountState, observation: Observation | None) -> float:
        paid = self._paid.setdefault(agent_id, set())
        total = self._total.get(agent_id, 0.0)
        for view in observation.negotiations if observation is not None else []:
            outcome = view.get("outcome") or {}
            if view.get("status") != "agreed" or view["session_id"] in paid:
                continue
            for agreement in outcome.get("agreements") or []:
                if agent_id in (agreement.get("buyer_id"), agreement.get("seller_id")):
                    total += self.gain(view, agreement, agent_id)
            paid.add(view["session_id"])
        self._total[agent_id] = total
        return total

    def gain(self, view: Mapping[str, Any], agreement: Mapping[str, Any], agent_id: int) -> float:
        """What one agreement is worth to the agent."""
        utility = session_utility(view)
        return float(utility(agreement["terms"])) - float(utility.reservation) if utility is not None else 0.0


class PriceSurplus(AgreementUtility):
    """On each agreement on a price: the buyer's reservation price minus the price, or the price
    minus the seller's reservation price (money; 0 where the session shows no reservation price)."""

    name: ClassVar[str] = "price_surplus"

    def gain(self, view: Mapping[str, Any], agreement: Mapping[str, Any], agent_id: int) -> float:
        reservation = view.get("my_reservation_price")
        price = (agreement.get("terms") or {}).get("price")
        if reservation is None or not isinstance(price, int | float):
            return 0.0
        return float(reservation) - float(price) if agreement.get("buyer_id") == agent_id else float(price) - float(reservation)


REWARDS: dict[str, type[Reward]] = {c.name: c for c in (PnL, InventoryPenalty, RiskAdjusted, InducedSurplus, AgreementUtility, PriceSurplus)}


def build_reward(description: Mapping[str, Any] | str) -> Reward:
    """A reward from its name or `describe()` (ValueError, one line, if unknown or bad params)."""
    if isinstance(description, str):
        description = {"name": description}
    name = str(description.get("name"))
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; rewards: {', '.join(REWARDS)}")
    cls = REWARDS[name]
    try:
        return cls(cls.Params.model_validate(dict(description.get("params") or {})))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"reward {name!r} params.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


__all__ = [
    "REWARDS",
    "AgreementUtility",
    "InducedSurplus",
    "InventoryPenalty",
    "PnL",
    "PriceSurplus",
    "Reward",
    "RiskAdjusted",
    "build_reward",
    "mark_to_market",
]
