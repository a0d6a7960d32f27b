"""Tests of the auctions: sealed-bid (first and second price) and English."""

from __future__ import annotations

import json

import pytest

from mesa_llm.negotiation import EnglishAuction, ProtocolError, SealedBidAuction, SessionEvent

SELLER = 0
B1, B2, B3 = 1, 2, 3


def kinds(events: list[SessionEvent]) -> list[str]:
    return [e.kind for e in events]


def sealed(pricing: str, reserve: float = 0.0, rounds: int = 1) -> SealedBidAuction:
    return SealedBidAuction(
        "sb-1",
        seller_id=SELLER,
        bidder_ids=[B1, B2, B3],
        good="widget",
        quantity=3,
        reserve_price=reserve,
        pricing=pricing,  # type: ignore[arg-type]
        bidding_rounds=rounds,
    )


@pytest.mark.parametrize(("pricing", "price"), [("first_price", 90.0), ("second_price", 70.0)])
def test_sealed_bid_highest_bid_wins(pricing: str, price: float) -> None:
    s = sealed(pricing, reserve=50.0)
    assert s.allowed(B1) == ["bid", "end_negotiation"]
    assert s.allowed(SELLER) == ["end_negotiation"]
    s.handle(B1, "bid", {"price": 70}, step=0)
    s.handle(B2, "bid", {"price": 90}, step=0)
    s.handle(B3, "bid", {"price": 40}, step=0)
    events = s.advance(0)
    assert kinds(events) == ["agreement"]
    assert s.status == "agreed"
    [agreement] = s.take_agreements()
    assert agreement.buyer_id == B2 and agreement.seller_id == SELLER
    assert agreement.terms == {"price": price, "quantity": 3}
    assert events[0].content["winning_bid"] == 90.0
    assert events[0].content["pricing"] == pricing


@pytest.mark.parametrize("pricing", ["first_price", "second_price"])
def test_a_bid_exactly_at_the_reserve_wins_and_one_tick_below_does_not(pricing: str) -> None:
    at = sealed(pricing, reserve=60.0)
    at.handle(B1, "bid", {"price": 60.0}, step=0)
    assert kinds(at.advance(0)) == ["agreement"]
    assert at.take_agreements()[0].terms["price"] == 60.0
    below = sealed(pricing, reserve=60.0)
    below.handle(B1, "bid", {"price": 59.99}, step=0)
    below.advance(0)
    assert below.status == "failed" and below.take_agreements() == []


def test_second_price_never_below_the_reserve() -> None:
    s = sealed("second_price", reserve=60.0)
    s.handle(B1, "bid", {"price": 100}, step=0)
    s.handle(B2, "bid", {"price": 30}, step=0)
    s.advance(0)
    assert s.take_agreements()[0].terms["price"] == 60.0
    lone = sealed("second_price", reserve=0.0)
    lone.handle(B3, "bid", {"price": 10}, step=0)
    lone.advance(0)
    assert lone.take_agreements()[0].terms["price"] == 0.0


def test_sealed_ties_go_to_the_earliest_bid_and_a_second_bid_replaces_the_first() -> None:
    s = sealed("first_price", rounds=2)
    s.handle(B1, "bid", {"price": 80}, step=0)
    s.handle(B2, "bid", {"price": 80}, step=0)
    assert s.advance(0) == []  # still bidding
    assert s.view(B1)["your_bid"] == 80.0
    s.handle(B1, "bid", {"price": 75}, step=1)  # replaces 80
    s.handle(B3, "bid", {"price": 80}, step=1)
    s.advance(1)
    [agreement] = s.take_agreements()
    assert agreement.buyer_id == B2  # 80 from B2 came before 80 from B3


def test_sealed_bids_are_private() -> None:
    s = sealed("first_price", rounds=2)
    s.handle(B1, "bid", {"price": 80}, step=0)
    s.handle(B2, "bid", {"price": 85}, step=0)
    s.advance(0)
    view = s.view(B1)
    json.dumps(view)
    assert view["your_bid"] == 80.0
    assert [o["proposer"] for o in view["offers"]] == [B1]
    assert "85" not in json.dumps(view)
    seller = s.view(SELLER)
    assert seller["bids_received"] == 2 and seller["offers"] == []


def test_sealed_no_valid_bid_fails_with_a_reason() -> None:
    s = sealed("first_price", reserve=100.0)
    s.handle(B1, "bid", {"price": 99.99}, step=0)
    events = s.advance(0)
    assert kinds(events) == ["disagreement"] and s.status == "failed"
    assert "reserve price 100.0" in events[0].content["reason"]
    empty = sealed("second_price", rounds=2)
    assert empty.advance(0) == []
    events = empty.advance(1)
    assert kinds(events) == ["disagreement"] and events[0].content["reason"] == "no bids"


def test_sealed_invalid_bids() -> None:
    s = sealed("first_price")
    with pytest.raises(ProtocolError) as err:
        s.handle(B1, "bid", {"price": -5}, step=0)
    assert err.value.reason == "bid outside the outcome space: price: -5.0 is below the minimum 0.0"
    with pytest.raises(ProtocolError, match="price: 10.001 is not a multiple of the tick"):
        s.handle(B1, "bid", {"price": 10.001}, step=0)
    with pytest.raises(ProtocolError, match="needs 'price'"):
        s.handle(B1, "bid", {}, step=0)
    with pytest.raises(ProtocolError, match="does not bid in its own auction"):
        s.handle(SELLER, "bid", {"price": 10}, step=0)
    with pytest.raises(ProtocolError, match="make_offer is not an action of sealed_bid"):
        s.handle(B1, "make_offer", {"terms": {"price": 10}}, step=0)
    s.handle(B1, "bid", {"terms": {"price": 10}}, step=0)  # terms form accepted too
    assert s.bids[B1].terms == {"price": 10.0}


def test_sealed_end_negotiation() -> None:
    s = sealed("first_price")
    s.handle(B1, "bid", {"price": 10}, step=0)
    ev = s.handle(B1, "end_negotiation", {}, step=0)  # a bidder withdraws
    assert kinds(ev) == ["end"] and s.status == "open" and B1 not in s.bids
    with pytest.raises(ProtocolError, match="withdrew"):
        s.handle(B1, "bid", {"price": 10}, step=0)
    s.handle(SELLER, "end_negotiation", {"reason": "changed my mind"}, step=0)
    assert s.status == "ended"
    assert s.advance(0) == [] and s.take_agreements() == []


def test_auction_constructor_checks() -> None:
    with pytest.raises(ValueError, match="pricing"):
        SealedBidAuction("x", seller_id=0, bidder_ids=[1], good="w", pricing="dutch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reserve_price"):
        SealedBidAuction(
            "x", seller_id=0, bidder_ids=[1], good="w", pricing="first_price", reserve_price=0.001
        )
    with pytest.raises(ValueError, match="bidders"):
        SealedBidAuction("x", seller_id=0, bidder_ids=[], good="w", pricing="first_price")
    with pytest.raises(ValueError, match="increment"):
        EnglishAuction("x", seller_id=0, bidder_ids=[1], good="w", start_price=1, increment=0)


# -- English -----------------------------------------------------------------------------


def english(reserve: float = 0.0, max_rounds: int = 50) -> EnglishAuction:
    return EnglishAuction(
        "en-1",
        seller_id=SELLER,
        bidder_ids=[B1, B2, B3],
        good="widget",
        start_price=10.0,
        increment=1.0,
        reserve_price=reserve,
        max_rounds=max_rounds,
    )


def test_english_ascends_and_closes_after_a_quiet_round() -> None:
    s = english()
    view = s.view(B1)
    assert view["min_bid"] == 10.0 and view["standing_price"] is None
    with pytest.raises(ProtocolError) as err:
        s.handle(B1, "bid", {"price": 9.99}, step=0)
    assert err.value.reason == "bid too low: at least 10.0 (the start price is 10.0)"
    s.handle(B1, "bid", {"price": 10}, step=0)
    s.handle(B2, "bid", {"price": 12}, step=0)  # jump bids are allowed
    with pytest.raises(ProtocolError, match="already bid this round"):
        s.handle(B2, "bid", {"price": 13}, step=0)
    assert s.advance(0) == []
    view = s.view(B3)
    assert (view["standing_price"], view["leader"], view["min_bid"]) == (12.0, B2, 13.0)
    assert [o["price"] for o in (o["terms"] for o in view["offers"])] == [10.0, 12.0]  # open
    with pytest.raises(ProtocolError, match="already the highest bidder"):
        s.handle(B2, "bid", {"price": 20}, step=1)
    with pytest.raises(ProtocolError, match="bid too low: at least 13.0"):
        s.handle(B1, "bid", {"price": 12.5}, step=1)
    with pytest.raises(ProtocolError, match="your bid stands"):
        s.handle(B2, "end_negotiation", {}, step=1)
    s.handle(B1, "bid", {"price": 13}, step=1)
    s.handle(B3, "bid", {"price": 13}, step=1)  # tie: B1 bid first
    s.advance(1)
    assert (s.leader, s.standing_price) == (B1, 13.0)
    events = s.advance(2)  # nobody bids: the auction closes
    assert kinds(events) == ["agreement"]
    [agreement] = s.take_agreements()
    assert agreement.buyer_id == B1 and agreement.terms == {"price": 13.0, "quantity": 1}


def test_english_reserve_and_deadline() -> None:
    s = english(reserve=50.0)
    s.handle(B1, "bid", {"price": 20}, step=0)
    s.advance(0)
    events = s.advance(1)
    assert kinds(events) == ["disagreement"] and s.status == "failed"
    assert "below the reserve price 50.0" in events[0].content["reason"]
    quiet = english()
    events = quiet.advance(0)
    assert kinds(events) == ["disagreement"] and events[0].content["reason"] == "no bids"
    capped = english(max_rounds=3)
    for step in range(3):
        bidder = (B1, B2)[step % 2]
        capped.handle(bidder, "bid", {"price": capped.min_bid}, step=step)
        events = capped.advance(step)
    assert capped.status == "agreed"
    assert capped.take_agreements()[0].terms["price"] == 12.0


def test_english_outside_the_space_and_end() -> None:
    s = english()
    with pytest.raises(ProtocolError, match="^bid outside the outcome space: price: "):
        s.handle(B1, "bid", {"price": "lots"}, step=0)
    s.handle(SELLER, "end_negotiation", {}, step=0)
    assert s.status == "ended"
    with pytest.raises(ProtocolError, match="is over"):
        s.handle(B1, "bid", {"price": 10}, step=0)
