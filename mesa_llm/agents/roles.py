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
        """Names of the actions (tools) this role may ever use; the world narrows them by state."""
        return list(_ACTION_NAMES[self])

    def allows(self, action: str) -> bool:
        """Whether this role may ever use ``action`` (constant time)."""
        return action in _ACTION_SETS[self]

    def _names(self) -> list[str]:
        if self is Role.MEDIATOR:
            return ["propose_settlement", *_TALK]
        if self is Role.REGULATOR:
            return ["flag_violation", "impose_fine", "suspend_trader", *_TALK]
        names = [*_TRADE]
        if self.may_buy:
            names.insert(names.index("bid"), "call_for_proposals")
        return [*names, *_SOCIAL, *_TALK]


_TRADE = ["place_order", "cancel_order", "make_offer", "accept_offer", "reject_offer", "end_negotiation", "bid"]
_SOCIAL = ["forward_message", "propose_alliance", "join_alliance", "leave_alliance", "message_alliance"]
_TALK = ["send_message", "broadcast", "wait"]

_BUYING_ROLES = frozenset(
    {Role.BUYER, Role.TRADER, Role.MARKET_MAKER, Role.SPECULATOR}
)
_SELLING_ROLES = frozenset(
    {Role.SELLER, Role.TRADER, Role.MARKET_MAKER, Role.SPECULATOR}
)


_ACTION_NAMES: dict[Role, tuple[str, ...]] = {role: tuple(role._names()) for role in Role}
_ACTION_SETS: dict[Role, frozenset[str]] = {role: frozenset(names) for role, names in _ACTION_NAMES.items()}
