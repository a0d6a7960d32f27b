"""Tests of the negotiation protocols: alternating offers, call for proposals, single-text mediation."""

from __future__ import annotations

import json

import pytest

from mesa_llm.negotiation import (
    AlternatingOffers,
    CallForProposals,
    CategoricalIssue,
    ContinuousIssue,
    IntegerIssue,
    OutcomeSpace,
    ProtocolError,
    SessionEvent,
    SingleTextMediation,
)

BUYER, SELLER, MEDIATOR = 1, 2, 9


def space() -> OutcomeSpace:
    return OutcomeSpace(
        [ContinuousIssue("price", 0.0, 200.0, tick=0.01), IntegerIssue("quantity", 1, 10)]
    )


def terms(price: float, quantity: int = 1) -> dict[str, float | int]:
    return {"price": price, "quantity": quantity}


def kinds(events: list[SessionEvent]) -> list[str]:
    return [e.kind for e in events]


# -- alternating offers ------------------------------------------------------------------


def ao(max_rounds: int = 6, first: int = BUYER) -> AlternatingOffers:
    return AlternatingOffers(
        "ao-1",
        buyer_id=BUYER,
        seller_id=SELLER,
        space=space(),
        max_rounds=max_rounds,
        first_mover=first,
        good="widget",
    )


def test_ao_offer_counter_accept_gives_an_agreement() -> None:
    s = ao()
    assert s.allowed(BUYER) == ["make_offer", "end_negotiation"]
    assert s.allowed(SELLER) == ["end_negotiation"]
    ev = s.handle(BUYER, "make_offer", {"terms": terms(80, 2)}, step=0)
    assert kinds(ev) == ["offer"]
    assert ev[0].content["offer_id"] == 1 and ev[0].content["terms"] == terms(80.0, 2)
    assert ev[0].content["session_id"] == "ao-1" and ev[0].content["parties"] == [BUYER, SELLER]
    assert s.advance(0) == []
    assert s.round == 1 and s.turn() == SELLER
    assert s.allowed(SELLER) == ["make_offer", "accept_offer", "reject_offer", "end_negotiation"]
    ev = s.handle(SELLER, "make_offer", {"terms": terms(120, 2)}, step=1)
    s.advance(1)
    view = s.view(BUYER)
    assert view["standing"] == [
        {"offer_id": 2, "proposer": SELLER, "terms": terms(120.0, 2), "round": 1, "to": BUYER}
    ]
    ev = s.handle(BUYER, "accept_offer", {"offer_id": 2}, step=2)
    assert kinds(ev) == ["accept", "agreement"]
    assert ev[1].content["terms"] == terms(120.0, 2)
    assert s.status == "agreed"
    [agreement] = s.take_agreements()
    assert (agreement.buyer_id, agreement.seller_id) == (BUYER, SELLER)
    assert agreement.terms == terms(120.0, 2)
    assert (agreement.step, agreement.round, agreement.protocol) == (2, 2, "alternating_offers")
    assert s.take_agreements() == []  # drained
    outcome = s.view(SELLER)["outcome"]
    assert outcome["status"] == "agreed" and outcome["agreements"] == [agreement.to_dict()]
    assert s.agreements == [agreement]
    with pytest.raises(ProtocolError, match="over"):
        s.handle(SELLER, "make_offer", {"terms": terms(1)}, step=2)
    assert s.advance(2) == []
    assert s.allowed(BUYER) == []


def test_ao_out_of_turn_and_twice_in_a_round() -> None:
    s = ao()
    with pytest.raises(ProtocolError) as err:
        s.handle(SELLER, "make_offer", {"terms": terms(100)}, step=0)
    assert err.value.reason == f"not your turn: waiting for agent {BUYER}"
    s.handle(BUYER, "make_offer", {"terms": terms(90)}, step=0)
    with pytest.raises(ProtocolError, match="already acted"):
        s.handle(BUYER, "make_offer", {"terms": terms(95)}, step=0)
    with pytest.raises(ProtocolError, match="not your turn"):
        s.handle(SELLER, "accept_offer", {"offer_id": 1}, step=0)
    s.advance(0)
    with pytest.raises(ProtocolError, match="not your turn"):
        s.handle(BUYER, "make_offer", {"terms": terms(95)}, step=1)


def test_ao_offer_outside_the_space_names_the_issue() -> None:
    s = ao()
    with pytest.raises(ProtocolError) as err:
        s.handle(BUYER, "make_offer", {"terms": terms(250)}, step=0)
    assert err.value.reason == (
        "offer outside the outcome space: price: 250.0 is above the maximum 200.0"
    )
    with pytest.raises(ProtocolError, match="missing issue 'quantity'"):
        s.handle(BUYER, "make_offer", {"terms": {"price": 10}}, step=0)
    with pytest.raises(ProtocolError, match="quantity: 1.5 is not an integer"):
        s.handle(BUYER, "make_offer", {"terms": terms(10, 1.5)}, step=0)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="needs 'terms'"):
        s.handle(BUYER, "make_offer", {"price": 10}, step=0)
    assert s.offers == [] and s.allowed(BUYER)[0] == "make_offer"  # nothing consumed


def test_ao_accept_needs_the_standing_offer_id() -> None:
    s = ao()
    s.handle(BUYER, "make_offer", {"terms": terms(90)}, step=0)
    s.advance(0)
    with pytest.raises(ProtocolError, match="needs the offer_id"):
        s.handle(SELLER, "accept_offer", {}, step=1)
    with pytest.raises(ProtocolError, match="offer 7 does not exist: the standing offer is 1"):
        s.handle(SELLER, "accept_offer", {"offer_id": 7}, step=1)
    s.handle(SELLER, "make_offer", {"terms": terms(110)}, step=1)
    s.advance(1)
    with pytest.raises(ProtocolError, match="offer 1 is no longer standing"):
        s.handle(BUYER, "accept_offer", {"offer_id": 1}, step=2)
    with pytest.raises(ProtocolError, match="no standing offer"):
        ao().handle(BUYER, "accept_offer", {"offer_id": 1}, step=0)


def test_ao_reject_passes_the_turn_and_clears_the_offer() -> None:
    s = ao()
    s.handle(BUYER, "make_offer", {"terms": terms(90)}, step=0)
    s.advance(0)
    ev = s.handle(SELLER, "reject_offer", {"offer_id": 1}, step=1)
    assert kinds(ev) == ["reject"]
    s.advance(1)
    assert s.turn() == BUYER and s.standing is None
    assert "accept_offer" not in s.allowed(BUYER)


def test_ao_deadline_fails_with_a_disagreement_event() -> None:
    s = ao(max_rounds=3)
    events: list[SessionEvent] = []
    for step in range(3):
        who = s.turn()
        assert who is not None
        s.handle(who, "make_offer", {"terms": terms(100 + step)}, step=step)
        events = s.advance(step)
    assert s.status == "failed"
    assert kinds(events) == ["disagreement"]
    assert events[0].content["reason"] == "deadline reached"
    assert s.end_reason == "deadline reached"
    assert s.take_agreements() == []
    assert s.view(BUYER)["rounds_left"] == 0
    assert s.view(BUYER)["outcome"] == {
        "status": "failed",
        "reason": "deadline reached",
        "agreements": [],
    }


def test_ao_an_unused_turn_passes_with_a_timeout() -> None:
    s = ao(first=SELLER)
    ev = s.advance(0)
    assert kinds(ev) == ["timeout"] and ev[0].agent_id == SELLER
    assert s.turn() == BUYER


def test_ao_end_negotiation_by_either_party_any_time() -> None:
    s = ao()
    ev = s.handle(SELLER, "end_negotiation", {"reason": "too cheap"}, step=0)
    assert kinds(ev) == ["end"]
    assert s.status == "ended"
    assert s.end_reason == f"agent {SELLER} ended the negotiation: too cheap"
    with pytest.raises(ProtocolError, match="is over"):
        s.handle(BUYER, "make_offer", {"terms": terms(1)}, step=0)


def test_ao_view_is_json_and_shows_the_last_three_offers() -> None:
    s = ao(max_rounds=10)
    for step in range(5):
        who = s.turn()
        assert who is not None
        s.handle(who, "make_offer", {"terms": terms(100 + step)}, step=step)
        s.advance(step)
    view = s.view(SELLER)
    json.dumps(view)
    assert view["you"] == SELLER and view["role"] == "seller"
    assert [o["offer_id"] for o in view["offers"]] == [3, 4, 5]
    assert view["round"] == 5 and view["max_rounds"] == 10 and view["rounds_left"] == 5
    assert view["turn"] == SELLER and view["status"] == "open" and view["outcome"] is None
    assert view["good"] == "widget"
    assert view["space"] == space().to_dict()
    assert view["allowed"] == [
        "make_offer",
        "accept_offer",
        "reject_offer",
        "end_negotiation",
    ]
    assert "utility" not in json.dumps(view) and "reservation" not in json.dumps(view)


def test_ao_rules_of_the_session() -> None:
    s = ao()
    with pytest.raises(ProtocolError, match="not a party"):
        s.handle(42, "make_offer", {"terms": terms(1)}, step=0)
    with pytest.raises(ProtocolError, match="bid is not an action of alternating_offers"):
        s.handle(BUYER, "bid", {"price": 1}, step=0)
    late = AlternatingOffers(
        "ao-2",
        buyer_id=BUYER,
        seller_id=SELLER,
        space=space(),
        max_rounds=2,
        first_mover=BUYER,
        start_step=5,
    )
    with pytest.raises(ProtocolError, match="opens at step 5"):
        late.handle(BUYER, "make_offer", {"terms": terms(1)}, step=4)
    assert late.advance(4) == [] and late.round == 0
    late.advance(5)
    assert late.advance(5) == [] and late.round == 1  # one advance per step
    with pytest.raises(ValueError):
        AlternatingOffers("x", buyer_id=1, seller_id=2, space=space(), max_rounds=3, first_mover=3)


# -- call for proposals ------------------------------------------------------------------

S1, S2, S3 = 11, 12, 13


def cfp(max_rounds: int = 5, max_agreements: int = 1) -> CallForProposals:
    return CallForProposals(
        "cfp-1",
        buyer_id=BUYER,
        seller_ids=[S1, S2, S3],
        space=space(),
        max_rounds=max_rounds,
        good="widget",
        max_agreements=max_agreements,
    )


def test_cfp_buyer_accepts_a_proposal_and_the_others_lose() -> None:
    s = cfp()
    assert kinds(s.opening_events()) == ["cfp"]
    assert s.allowed(BUYER) == ["make_offer", "end_negotiation"]
    s.handle(S1, "make_offer", {"terms": terms(120)}, step=0)
    s.handle(S2, "make_offer", {"terms": terms(110)}, step=0)
    s.advance(0)
    view = s.view(BUYER)
    assert [o["proposer"] for o in view["standing"]] == [S1, S2]
    # Sellers only see their own exchange.
    assert [o["proposer"] for o in s.view(S2)["offers"]] == [S2]
    ev = s.handle(BUYER, "accept_offer", {"offer_id": 2}, step=1)
    assert kinds(ev) == ["accept", "agreement", "end"]
    assert sorted(ev[2].content["lost"]) == [S1, S3]
    assert s.status == "agreed"
    [agreement] = s.take_agreements()
    assert (agreement.buyer_id, agreement.seller_id, agreement.terms) == (BUYER, S2, terms(110.0))
    assert s.view(S1)["left_because"] == "lost"


def test_cfp_counter_offer_accepted_by_the_seller() -> None:
    s = cfp()
    s.handle(S1, "make_offer", {"terms": terms(120)}, step=0)
    s.advance(0)
    with pytest.raises(ProtocolError, match="needs 'to'"):
        s.handle(BUYER, "make_offer", {"terms": terms(100)}, step=1)
    with pytest.raises(ProtocolError, match="not a seller still in this call"):
        s.handle(BUYER, "make_offer", {"terms": terms(100), "to": 99}, step=1)
    s.handle(BUYER, "make_offer", {"terms": terms(100), "to": S1}, step=1)
    assert s.view(BUYER)["standing"] == []  # the counter answered S1's proposal
    s.advance(1)
    view = s.view(S1)
    assert [o["offer_id"] for o in view["standing"]] == [2]
    with pytest.raises(ProtocolError, match="no counter-offer"):
        s.handle(S2, "accept_offer", {"offer_id": 2}, step=2)
    ev = s.handle(S1, "accept_offer", {"offer_id": 2}, step=2)
    assert kinds(ev)[:2] == ["accept", "agreement"]
    [agreement] = s.take_agreements()
    assert agreement.seller_id == S1 and agreement.terms == terms(100.0)


def test_cfp_several_agreements() -> None:
    s = cfp(max_agreements=2)
    for seller, price in ((S1, 120), (S2, 110), (S3, 130)):
        s.handle(seller, "make_offer", {"terms": terms(price)}, step=0)
    s.advance(0)
    s.handle(BUYER, "accept_offer", {"offer_id": 2}, step=1)
    assert s.status == "open"
    with pytest.raises(ProtocolError, match="out of this call"):
        s.handle(S2, "make_offer", {"terms": terms(100)}, step=1)
    s.handle(BUYER, "accept_offer", {"offer_id": 1}, step=1)
    assert s.status == "agreed"
    assert [a.seller_id for a in s.take_agreements()] == [S2, S1]


def test_cfp_out_of_turn_and_outside_the_space() -> None:
    s = cfp()
    s.handle(S1, "make_offer", {"terms": terms(120)}, step=0)
    with pytest.raises(ProtocolError, match="already acted this round"):
        s.handle(S1, "make_offer", {"terms": terms(119)}, step=0)
    with pytest.raises(ProtocolError, match="no standing proposal"):
        cfp().handle(BUYER, "accept_offer", {"offer_id": 1}, step=0)
    with pytest.raises(ProtocolError) as err:
        s.handle(S2, "make_offer", {"terms": terms(500)}, step=0)
    assert "price: 500.0 is above the maximum 200.0" in err.value.reason
    with pytest.raises(ProtocolError, match="is not a standing proposal"):
        s.handle(BUYER, "accept_offer", {"offer_id": 9}, step=0)


def test_cfp_deadline_fails() -> None:
    s = cfp(max_rounds=2)
    s.handle(S1, "make_offer", {"terms": terms(120)}, step=0)
    assert s.advance(0) == []
    events = s.advance(1)
    assert kinds(events) == ["disagreement"]
    assert events[0].content["reason"] == "deadline reached"
    assert s.status == "failed"


def test_cfp_end_negotiation() -> None:
    s = cfp()
    ev = s.handle(S1, "end_negotiation", {}, step=0)
    assert kinds(ev) == ["end"] and s.status == "open"
    assert s.allowed(S1) == []
    ev = s.handle(BUYER, "end_negotiation", {}, step=0)
    assert s.status == "ended" and sorted(ev[0].content["lost"]) == [S2, S3]
    # all sellers withdrawing fails the call
    t = cfp()
    for seller in (S1, S2):
        t.handle(seller, "end_negotiation", {}, step=0)
    ev = t.handle(S3, "end_negotiation", {}, step=0)
    assert kinds(ev) == ["end", "disagreement"] and t.status == "failed"


# -- single-text mediation ---------------------------------------------------------------


def st_session(max_rounds: int = 6) -> SingleTextMediation:
    sp = OutcomeSpace(
        [ContinuousIssue("price", 0.0, 200.0, tick=0.01), CategoricalIssue("grade", ["a", "b"])]
    )
    return SingleTextMediation(
        "st-1",
        mediator_id=MEDIATOR,
        buyer_id=BUYER,
        seller_id=SELLER,
        space=sp,
        max_rounds=max_rounds,
        good="widget",
    )


def test_single_text_both_accept_gives_an_agreement_with_the_mediator() -> None:
    s = st_session()
    assert s.allowed(MEDIATOR) == ["propose_settlement", "end_negotiation"]
    assert s.allowed(BUYER) == ["end_negotiation"]
    ev = s.handle(MEDIATOR, "propose_settlement", {"terms": {"price": 100, "grade": "a"}}, 0)
    assert kinds(ev) == ["proposal"]
    # the text can be answered from the next round on
    with pytest.raises(ProtocolError, match="from the next round"):
        s.handle(BUYER, "accept_offer", {"offer_id": 1}, step=0)
    s.advance(0)
    assert s.view(BUYER)["standing"][0]["offer_id"] == 1
    s.handle(BUYER, "accept_offer", {"offer_id": 1}, step=1)
    with pytest.raises(ProtocolError, match="already answered"):
        s.handle(BUYER, "reject_offer", {"offer_id": 1}, step=1)
    assert s.status == "open"
    ev = s.handle(SELLER, "accept_offer", {"offer_id": 1}, step=1)
    assert kinds(ev) == ["accept", "agreement"]
    [agreement] = s.take_agreements()
    assert agreement.mediator_id == MEDIATOR
    assert agreement.terms == {"price": 100.0, "grade": "a"}
    assert s.status == "agreed"


def test_single_text_accept_after_a_veto_in_the_same_round_is_recorded_but_fails() -> None:
    s = st_session()
    s.handle(MEDIATOR, "propose_settlement", {"terms": {"price": 100, "grade": "a"}}, 0)
    s.advance(0)
    s.handle(BUYER, "reject_offer", {"offer_id": 1}, 1)
    ev = s.handle(SELLER, "accept_offer", {"offer_id": 1}, step=1)
    assert kinds(ev) == ["accept"] and not s.take_agreements() and s.status == "open"
    with pytest.raises(ProtocolError, match="already answered"):
        s.handle(SELLER, "reject_offer", {"offer_id": 1}, 1)


def test_single_text_veto_with_counter_and_a_new_text() -> None:
    s = st_session()
    s.handle(MEDIATOR, "propose_settlement", {"terms": {"price": 100, "grade": "a"}}, 0)
    s.advance(0)
    ev = s.handle(BUYER, "reject_offer", {"offer_id": 1, "counter": {"price": 80, "grade": "A"}}, 1)
    assert kinds(ev) == ["veto"] and ev[0].content["counter"] == {"price": 80.0, "grade": "a"}
    with pytest.raises(ProtocolError, match="counter outside the outcome space: grade"):
        s.handle(SELLER, "reject_offer", {"offer_id": 1, "counter": {"price": 1, "grade": "z"}}, 1)
    s.handle(SELLER, "reject_offer", {"offer_id": 1, "counter": {"price": 120, "grade": "b"}}, 1)
    s.advance(1)
    mview = s.view(MEDIATOR)
    assert mview["counters"] == {
        "buyer": {"price": 80.0, "grade": "a"},
        "seller": {"price": 120.0, "grade": "b"},
    }
    assert mview["responses"] == {"buyer": "veto", "seller": "veto"}
    assert "counters" not in s.view(BUYER)  # the parties do not see each other's counters
    s.handle(MEDIATOR, "propose_settlement", {"terms": {"price": 100, "grade": "b"}}, 2)
    with pytest.raises(ProtocolError, match="already proposed"):
        s.handle(MEDIATOR, "propose_settlement", {"terms": {"price": 99, "grade": "b"}}, 2)
    s.advance(2)
    assert s.view(SELLER)["text"]["offer_id"] == 2
    assert s.view(SELLER)["responses"] == {"buyer": None, "seller": None}
    with pytest.raises(ProtocolError, match="not the current text"):
        s.handle(SELLER, "accept_offer", {"offer_id": 1}, step=3)


def test_single_text_out_of_turn_and_outside_the_space() -> None:
    s = st_session()
    with pytest.raises(ProtocolError, match="only the mediator proposes"):
        s.handle(BUYER, "propose_settlement", {"terms": {"price": 1, "grade": "a"}}, 0)
    with pytest.raises(ProtocolError, match="no text to answer yet"):
        s.handle(BUYER, "accept_offer", {"offer_id": 1}, step=0)
    with pytest.raises(ProtocolError, match="make_offer is not an action of single_text"):
        s.handle(BUYER, "make_offer", {"terms": {"price": 1, "grade": "a"}}, 0)
    with pytest.raises(ProtocolError) as err:
        s.handle(MEDIATOR, "propose_settlement", {"terms": {"price": 1, "grade": "c"}}, 0)
    assert err.value.reason.startswith("text outside the outcome space: grade: 'c'")
    s.handle(MEDIATOR, "propose_settlement", {"terms": {"price": 1, "grade": "a"}}, 0)
    s.advance(0)
    with pytest.raises(ProtocolError, match="the mediator proposes texts"):
        s.handle(MEDIATOR, "accept_offer", {"offer_id": 1}, step=1)


def test_single_text_deadline_and_end() -> None:
    s = st_session(max_rounds=2)
    s.advance(0)
    events = s.advance(1)
    assert kinds(events) == ["disagreement"] and s.status == "failed"
    t = st_session()
    ev = t.handle(MEDIATOR, "end_negotiation", {}, step=0)
    assert kinds(ev) == ["end"] and t.status == "ended"
