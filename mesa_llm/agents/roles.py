"""Roles an agent can play and what each role may do in the market."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """An agent's role: decides which actions it is offered and which order sides it may use."""

    BUYER = "buyer"
    SELLER = "seller"
    TRADER = "trader"
    MARKET_MAKER = "market_maker"
    SPECULATOR = "speculator"
    MEDIATOR = "mediator"
    REGULATOR = "regulator"

    @property
    def may_buy(self) -> bool:
        """Whether this role may place buy orders."""
        return self in _BUYING_ROLES

    @property
    def may_sell(self) -> bool:
        """Whether this role may place sell orders."""
        return self in _SELLING_ROLES

    def action_names(self) -> list[str]:
        """Names of the actions (tools) offered to this role."""
        if self.may_buy or self.may_sell:
            return ["place_order", "cancel_order", "send_message", "broadcast", "wait"]
        return ["send_message", "broadcast", "wait"]


_BUYING_ROLES = frozenset(
    {Role.BUYER, Role.TRADER, Role.MARKET_MAKER, Role.SPECULATOR}
)
_SELLING_ROLES = frozenset(
    {Role.SELLER, Role.TRADER, Role.MARKET_MAKER, Role.SPECULATOR}
)
