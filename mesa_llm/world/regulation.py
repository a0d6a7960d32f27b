"""Hard market rules the world enforces (price caps and floors, position limits, suspensions) and
the regulator's discretionary powers (flags, fines to the house account, suspensions).

The hard rules are checked in code on every order and every negotiated price, whoever sends them:
no prompt can talk its way past them. The regulator's actions are validated here too (a fine is
capped by the scenario's maximum and by the cash the agent has, so no balance goes negative) and
every one is recorded with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mesa_llm.market import HOUSE, Ledger, Money, Side


class RuleViolation(Exception):
    """An order or offer that breaks a hard rule; ``reason`` is shown to the agent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class MarketRules:
    """The hard rules in force (prices in ticks) and who is suspended until when."""

    money: Money
    price_caps: dict[str, int] = field(default_factory=dict)
    price_floors: dict[str, int] = field(default_factory=dict)
    position_limits: dict[str, int] = field(default_factory=dict)
    max_fine: int | None = None
    suspended_until: dict[int, int] = field(default_factory=dict)

    def is_suspended(self, agent_id: int, step: int) -> bool:
        """Whether the agent may not trade or negotiate at ``step``."""
        until = self.suspended_until.get(agent_id)
        return until is not None and step <= until

    def check_suspension(self, agent_id: int, step: int) -> None:
        """Raise if the agent is suspended."""
        if self.is_suspended(agent_id, step):
            raise RuleViolation(
                f"you are suspended from trading until step {self.suspended_until[agent_id]}"
            )

    def check_price(self, good: str | None, price: int) -> None:
        """Raise if ``price`` (ticks) is above the good's cap or below its floor."""
        if good is None:
            return
        cap = self.price_caps.get(good)
        if cap is not None and price > cap:
            raise RuleViolation(
                f"price {self.money.to_units(price)} is above the price cap {self.money.to_units(cap)} for {good}"
            )
        floor = self.price_floors.get(good)
        if floor is not None and price < floor:
            raise RuleViolation(
                f"price {self.money.to_units(price)} is below the price floor {self.money.to_units(floor)} for {good}"
            )

    def check_position(
        self, good: str, side: Side, quantity: int, holding: int, open_buys: int, open_sells: int
    ) -> None:
        """Raise if filling this order and the agent's open ones could exceed the position limit."""
        limit = self.position_limits.get(good)
        if limit is None:
            return
        if side is Side.BUY and holding + open_buys + quantity > limit:
            raise RuleViolation(
                f"position limit: holding {holding} {good} plus {open_buys + quantity} on order "
                f"would exceed the limit of {limit}"
            )
        if side is Side.SELL and holding - open_sells - quantity < -limit:
            raise RuleViolation(f"position limit: selling {quantity} {good} would exceed the limit of {limit}")

    def fine(self, ledger: Ledger, agent_id: int, amount: int) -> int:
        """Move a fine (capped by ``max_fine`` and the agent's free cash) to the house; return it."""
        account = ledger.account(agent_id)
        capped = amount if self.max_fine is None else min(amount, self.max_fine)
        free = max(account.available_cash(credit=False), 0)  # a fine is never paid on credit
        paid = min(capped, free)
        if paid > 0:
            ledger.transfer_cash(agent_id, HOUSE, paid, memo="fine")
        return paid

    def suspend(self, agent_id: int, until: int) -> None:
        """Suspend the agent up to and including step ``until``."""
        self.suspended_until[agent_id] = max(until, self.suspended_until.get(agent_id, 0))

    def view(self) -> dict[str, Any]:
        """The rules in force, in currency units (for observations and the recording)."""
        to_units = self.money.to_units
        return {
            "price_caps": {g: to_units(p) for g, p in self.price_caps.items()},
            "price_floors": {g: to_units(p) for g, p in self.price_floors.items()},
            "position_limits": dict(self.position_limits),
            "max_fine": to_units(self.max_fine) if self.max_fine is not None else None,
            "suspended_until": {str(a): s for a, s in self.suspended_until.items()},
        }
