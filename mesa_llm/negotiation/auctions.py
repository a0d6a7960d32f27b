"""Single-good auctions as negotiation sessions: sealed-bid (first/second price) and English.

Auctions share the session machinery of :mod:`mesa_llm.negotiation.protocols`: bidders act
with ``bid`` ({"price": x}, currency units per unit of the good, on the tick), the world
calls ``advance`` once per step, and the sale comes out as an :class:`Agreement` with terms
``{"price": p, "quantity": q}`` (the winner is the buyer). The seller may end_negotiation
(cancel) while the auction is open; a bidder that ends it withdraws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from mesa_llm.market.money import Money
from mesa_llm.negotiation.issues import ContinuousIssue, OutcomeError, OutcomeSpace
from mesa_llm.negotiation.protocols import (
    NegotiationSession,
    Offer,
    ProtocolError,
    SessionEvent,
)

__all__ = ["EnglishAuction", "SealedBidAuction"]

#: Default upper bound of the price issue (auctions need a finite outcome space).
DEFAULT_MAX_PRICE = 1e9


class _Auction(NegotiationSession):
    """What both auctions share: seller, bidders, price issue, bid parsing, withdrawal."""

    protocol_actions: ClassVar[tuple[str, ...]] = ("bid", "end_negotiation")

    def __init__(
        self,
        session_id: str,
        *,
        seller_id: int,
        bidder_ids: Sequence[int],
        good: str,
        quantity: int,
        reserve_price: float,
        max_rounds: int,
        start_step: int,
        tick: float,
        max_price: float,
    ) -> None:
        bidders = [int(b) for b in bidder_ids]
        if not bidders:
            raise ValueError(f"session {session_id}: an auction needs bidders")
        space = OutcomeSpace([ContinuousIssue("price", 0.0, float(max_price), tick)])
        super().__init__(
            session_id,
            space=space,
            parties=[seller_id, *bidders],
            max_rounds=max_rounds,
            good=good,
            start_step=start_step,
        )
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValueError(
                f"session {session_id}: quantity must be an int >= 1, got {quantity!r}"
            )
        self.seller_id = int(seller_id)
        self.bidder_ids: list[int] = bidders
        self.quantity = quantity
        self.money = Money(tick)
        self.tick = self.money.tick_size
        self.reserve_price = self._price_param(reserve_price, "reserve_price")
        #: bidders that withdrew
        self.withdrawn: set[int] = set()

    def _price_param(self, value: float, what: str) -> float:
        try:
            return float(self.space.validate({"price": value})["price"])
        except OutcomeError as exc:
            raise ValueError(f"session {self.session_id}: {what}: {exc}") from None

    def role(self, agent_id: int) -> str | None:
        """The role: "seller", "bidder" or None."""
        if agent_id == self.seller_id:
            return "seller"
        if agent_id in self.bidder_ids:
            return "bidder"
        return None

    def _ticks(self, price: float) -> int:
        return self.money.to_ticks(price)

    def _bid_price(self, payload: Mapping[str, Any]) -> float:
        price = payload.get("price")
        terms = payload.get("terms")
        if price is None and isinstance(terms, Mapping):
            price = terms.get("price")
        if price is None:
            raise ProtocolError("bid needs 'price': the price per unit you bid")
        return float(self._validate_terms({"price": price}, "bid")["price"])

    def _blocked_bidder(self, agent_id: int, action: str) -> str | None:
        return None

    def _blocked(self, agent_id: int, action: str) -> str | None:
        if agent_id == self.seller_id:
            if action == "bid":
                return "the seller does not bid in its own auction"
            return None
        if agent_id in self.withdrawn:
            return "you withdrew from this auction"
        return self._blocked_bidder(agent_id, action)

    def _withdraw(self, agent_id: int) -> list[SessionEvent]:
        self.withdrawn.add(agent_id)
        return [self._event("end", agent_id, reason=f"bidder {agent_id} withdrew")]

    def _sell(self, winner: int, price: float, step: int, **extra: Any) -> list[SessionEvent]:
        terms = {"price": price, "quantity": self.quantity}
        event = self._agree(winner, self.seller_id, terms, step, winner=winner, **extra)
        self._close("agreed", f"sold to agent {winner} at {price}")
        return [event]

    def _common_view(self, agent_id: int) -> dict[str, Any]:
        return {
            "seller_id": self.seller_id,
            "bidders": list(self.bidder_ids),
            "quantity": self.quantity,
            "reserve_price": self.reserve_price,
            "tick": self.tick,
            "withdrawn": agent_id in self.withdrawn,
        }


class SealedBidAuction(_Auction):
    """Sealed-bid auction: each bidder bids privately during ``bidding_rounds`` rounds.

    A second bid replaces the first. At the end of the last bidding round the highest bid at
    or above the reserve price wins (ties: the earliest bid) and pays its own bid
    (``first_price``) or max(second-highest bid, reserve price) (``second_price``, Vickrey).
    Views show a bidder only its own bid; the seller sees how many bids there are. ``value_low``
    (the lowest value a bidder can have, common knowledge in the symmetric independent private
    values model) is shown to everyone: the first-price equilibrium bid depends on it.
    """

    protocol: ClassVar[str] = "sealed_bid"

    def __init__(
        self,
        session_id: str,
        *,
        seller_id: int,
        bidder_ids: Sequence[int],
        good: str,
        quantity: int = 1,
        reserve_price: float = 0.0,
        pricing: Literal["first_price", "second_price"],
        bidding_rounds: int = 1,
        start_step: int = 0,
        tick: float = 0.01,
        max_price: float = DEFAULT_MAX_PRICE,
        value_low: float = 0.0,
    ) -> None:
        if pricing not in ("first_price", "second_price"):
            raise ValueError(f"pricing must be 'first_price' or 'second_price', got {pricing!r}")
        super().__init__(
            session_id,
            seller_id=seller_id,
            bidder_ids=bidder_ids,
            good=good,
            quantity=quantity,
            reserve_price=reserve_price,
            max_rounds=bidding_rounds,
            start_step=start_step,
            tick=tick,
            max_price=max_price,
        )
        self.pricing: Literal["first_price", "second_price"] = pricing
        if not value_low >= 0:
            raise ValueError(f"session {session_id}: value_low must be >= 0, got {value_low!r}")
        self.value_low = float(value_low)
        self.bidding_rounds = bidding_rounds
        #: each bidder's current bid (a later bid has a larger offer_id)
        self.bids: dict[int, Offer] = {}

    def _visible(self, agent_id: int, offer: Offer) -> bool:
        return offer.proposer == agent_id

    def _apply(
        self, agent_id: int, action: str, payload: Mapping[str, Any], step: int
    ) -> list[SessionEvent]:
        if action == "end_negotiation":
            if agent_id == self.seller_id:
                return self._end_by(agent_id, payload)
            self.bids.pop(agent_id, None)
            return self._withdraw(agent_id)
        price = self._bid_price(payload)
        previous = self.bids.get(agent_id)
        offer = self._new_offer(agent_id, {"price": price}, step, to=self.seller_id)
        self.bids[agent_id] = offer
        return [
            self._event(
                "bid",
                agent_id,
                **offer.to_dict(),
                sealed=True,
                replaces=previous.offer_id if previous is not None else None,
            )
        ]

    def _close_round(self, step: int) -> list[SessionEvent]:
        if self.round + 1 < self.bidding_rounds:
            return []
        bids = sorted(
            self.bids.values(), key=lambda o: (-self._ticks(o.terms["price"]), o.offer_id)
        )
        if not bids:
            return self._fail("no bids", bids=0)
        best = bids[0]
        best_price = float(best.terms["price"])
        if self._ticks(best_price) < self._ticks(self.reserve_price):
            return self._fail(
                f"no bid at or above the reserve price {self.reserve_price} (highest {best_price})",
                bids=len(bids),
            )
        if self.pricing == "first_price":
            price = best_price
        else:
            second = float(bids[1].terms["price"]) if len(bids) > 1 else 0.0
            price = max(second, self.reserve_price)
        return self._sell(
            best.proposer,
            price,
            step,
            pricing=self.pricing,
            winning_bid=best_price,
            bids=len(bids),
            losers=[o.proposer for o in bids[1:]],
        )

    def _view_extra(self, agent_id: int) -> dict[str, Any]:
        data = self._common_view(agent_id)
        data["pricing"] = self.pricing
        data["bidding_rounds"] = self.bidding_rounds
        data["value_low"] = self.value_low
        if agent_id == self.seller_id:
            data["bids_received"] = len(self.bids)
        else:
            mine = self.bids.get(agent_id)
            data["your_bid"] = float(mine.terms["price"]) if mine is not None else None
        return data


class EnglishAuction(_Auction):
    """Open ascending auction: the standing price and the leader are public.

    Each round every bidder other than the leader may bid at least the standing price plus
    ``increment`` (the first bid at least ``start_price``); bids of a round are checked
    against the price at the start of the round and resolved in ``advance``: the highest
    becomes the standing bid (ties: the earliest). The auction closes when ``idle_rounds``
    rounds (default 1) pass with no new bid, or after ``max_rounds``: the leader wins at its
    bid if that is at or above the reserve price.
    """

    protocol: ClassVar[str] = "english"

    def __init__(
        self,
        session_id: str,
        *,
        seller_id: int,
        bidder_ids: Sequence[int],
        good: str,
        quantity: int = 1,
        start_price: float,
        increment: float,
        reserve_price: float = 0.0,
        max_rounds: int = 50,
        start_step: int = 0,
        tick: float = 0.01,
        idle_rounds: int = 1,
        max_price: float = DEFAULT_MAX_PRICE,
    ) -> None:
        super().__init__(
            session_id,
            seller_id=seller_id,
            bidder_ids=bidder_ids,
            good=good,
            quantity=quantity,
            reserve_price=reserve_price,
            max_rounds=max_rounds,
            start_step=start_step,
            tick=tick,
            max_price=max_price,
        )
        self.start_price = self._price_param(start_price, "start_price")
        self.increment = self._price_param(increment, "increment")
        if self.increment <= 0:
            raise ValueError(f"session {session_id}: increment must be > 0")
        if idle_rounds < 1:
            raise ValueError(f"session {session_id}: idle_rounds must be >= 1")
        self.idle_rounds = idle_rounds
        #: the standing (highest resolved) bid, and who made it
        self.standing_price: float | None = None
        self.leader: int | None = None
        self._round_bids: dict[int, Offer] = {}
        self._idle = 0

    @property
    def min_bid(self) -> float:
        """The lowest bid accepted this round."""
        if self.standing_price is None:
            return self.start_price
        ticks = self._ticks(self.standing_price) + self._ticks(self.increment)
        return self.money.to_units(ticks)

    def _blocked_bidder(self, agent_id: int, action: str) -> str | None:
        if agent_id == self.leader:
            if action == "bid":
                return f"you are already the highest bidder at {self.standing_price}"
            return f"you are the highest bidder at {self.standing_price}: your bid stands"
        if action == "bid" and agent_id in self._round_bids:
            return "you already bid this round: wait for the next round"
        return None

    def _apply(
        self, agent_id: int, action: str, payload: Mapping[str, Any], step: int
    ) -> list[SessionEvent]:
        if action == "end_negotiation":
            if agent_id == self.seller_id:
                return self._end_by(agent_id, payload)
            self._round_bids.pop(agent_id, None)
            return self._withdraw(agent_id)
        price = self._bid_price(payload)
        minimum = self.min_bid
        if self._ticks(price) < self._ticks(minimum):
            if self.standing_price is None:
                why = f"the start price is {self.start_price}"
            else:
                why = (
                    f"the standing price {self.standing_price} plus the increment {self.increment}"
                )
            raise ProtocolError(f"bid too low: at least {minimum} ({why})")
        offer = self._new_offer(agent_id, {"price": price}, step, to=self.seller_id)
        self._round_bids[agent_id] = offer
        return [self._event("bid", agent_id, **offer.to_dict(), sealed=False)]

    def _close_round(self, step: int) -> list[SessionEvent]:
        if self._round_bids:
            best = min(
                self._round_bids.values(),
                key=lambda o: (-self._ticks(o.terms["price"]), o.offer_id),
            )
            self.standing_price = float(best.terms["price"])
            self.leader = best.proposer
            self._round_bids = {}
            self._idle = 0
        else:
            self._idle += 1
        if self._idle < self.idle_rounds and self.round + 1 < self.max_rounds:
            return []
        if self.leader is None or self.standing_price is None:
            return self._fail("no bids")
        if self._ticks(self.standing_price) < self._ticks(self.reserve_price):
            return self._fail(
                f"the highest bid {self.standing_price} is below the reserve price "
                f"{self.reserve_price}"
            )
        return self._sell(self.leader, self.standing_price, step)

    def _view_extra(self, agent_id: int) -> dict[str, Any]:
        data = self._common_view(agent_id)
        data.update(
            {
                "start_price": self.start_price,
                "increment": self.increment,
                "standing_price": self.standing_price,
                "leader": self.leader,
                "min_bid": self.min_bid,
                "idle_rounds": self.idle_rounds,
            }
        )
        if agent_id != self.seller_id:
            mine = self._round_bids.get(agent_id)
            data["your_bid_this_round"] = float(mine.terms["price"]) if mine is not None else None
            data["you_lead"] = agent_id == self.leader
        return data
