"""The negotiation desk on its own: sessions agents open, run end to end into settled contracts;
negotiated prices held to the caps and floors; turns, suspensions and breaches at their edges."""

from __future__ import annotations

from typing import Any

import pytest

from mesa_llm.actions import AcceptOffer, Bid, CallForProposals, MakeOffer, RejectOffer
from mesa_llm.agents.roles import Role
from mesa_llm.market import Ledger, Money
from mesa_llm.scenario import IssueSpec, NegotiationSettings, OutcomeSpaceSpec, SessionSpec
from mesa_llm.social import Reputation
from mesa_llm.world.desk import NegotiationDesk
from mesa_llm.world.exchange import RejectedAction
from mesa_llm.world.regulation import MarketRules

MONEY = Money(0.01)
BUYER, SELLER, POOR, REGULATOR, SELLER2 = 1, 2, 3, 4, 5
ROLES = {BUYER: Role.BUYER, SELLER: Role.SELLER, POOR: Role.BUYER, REGULATOR: Role.REGULATOR, SELLER2: Role.SELLER}


def desk(**settings: Any) -> NegotiationDesk:
    space = OutcomeSpaceSpec(issues=[IssueSpec(name="price", type="continuous", low=0.0, high=500.0, tick=0.01)])
    config = NegotiationSettings(
        spaces={"w": space},
        open_sessions=True,
        default_spaces={"widget": "w"},
        max_rounds=6,
        call_for_proposals=True,
        penalty_rate=0.1,
        **settings,
    )
    ledger = Ledger(["widget"])
    ledger.open_account(BUYER, cash=100_000)
    ledger.open_account(SELLER, cash=0, holdings={"widget": 3})
    ledger.open_account(POOR, cash=500)
    ledger.open_account(REGULATOR)
    ledger.open_account(SELLER2, holdings={"widget": 1})
    rules = MarketRules(MONEY, price_caps={"widget": 20_000}, price_floors={"widget": 1_000})
    reputation = Reputation()
    for agent in ROLES:
        reputation.register(agent)
    return NegotiationDesk(config, MONEY, ledger, rules, reputation, roles=ROLES, unit_value=lambda a, g: 42.0)


def open_offer(d: NegotiationDesk, by: int, to: int, price: float, step: int = 1) -> str:
    """Open a session with a first offer; return its id."""
    events = d.act(by, MakeOffer(counterparty_id=to, good="widget", terms={"price": price}), step)
    [opened] = [c for t, c, _ in events if t == "negotiation" and c["kind"] == "opened"]
    return str(opened["session_id"])


def reason(d: NegotiationDesk, agent: int, action: Any, step: int = 1) -> str:
    with pytest.raises(RejectedAction) as info:
        d.act(agent, action, step)
    return info.value.reason


# ----------------------------------------------------------------------------- end to end


def test_agent_opened_negotiation_runs_to_a_settled_contract() -> None:
    d = desk()
    assert "make_offer" in d.available(BUYER, Role.BUYER)
    events = d.act(BUYER, MakeOffer(counterparty_id=SELLER, good="widget", terms={"price": 150.0}), step=1)
    assert [t for t, _, _ in events] == ["action", "negotiation", "offer"]
    opened = events[1][1]
    sid = opened["session_id"]
    assert opened["parties"] == [BUYER, SELLER] and opened["protocol"] == "alternating_offers"
    assert opened["good"] == "widget" and opened["max_rounds"] == 6
    assert d.sessions[sid].turn() == BUYER  # the opener moved first
    d.advance(1)
    assert "accept_offer" in d.available(SELLER, Role.SELLER)
    events = d.act(SELLER, AcceptOffer(session_id=sid, offer_id=1), step=2)
    assert [t for t, _, _ in events] == ["action", "negotiation", "agreement"]
    out, fulfilled = d.advance(2)
    contracts = [c for t, c, _ in out if t == "contract"]
    assert [c["stage"] for c in contracts] == ["created", "settled"]
    assert contracts[1]["settlement"]["status"] == "fulfilled" and contracts[1]["price"] == 150.0
    assert [c.contract_id for c in fulfilled] == [1]
    ledger = d.ledger
    assert ledger.account(BUYER).cash == 100_000 - 15_000 and ledger.account(BUYER).holdings["widget"] == 1
    assert ledger.account(SELLER).cash == 15_000 and ledger.account(SELLER).holdings["widget"] == 2
    assert d.reputation.score(BUYER) > 0.5 and d.reputation.score(SELLER) > 0.5
    assert d.stats() | {"agreement_rate": None} == {
        "sessions": 1, "closed_sessions": 1, "agreements": 1, "agreement_rate": None, "contracts": 1,
        "contracts_fulfilled": 1, "contracts_breached": 0, "contract_value": 150.0,
    }
    ledger.check_invariants()


def test_a_seller_can_open_too_and_the_buyer_is_the_other_party() -> None:
    d = desk()
    sid = open_offer(d, SELLER, BUYER, 180.0)
    session = d.sessions[sid]
    assert (session.buyer_id, session.seller_id, session.turn()) == (BUYER, SELLER, SELLER)  # type: ignore[attr-defined]


def test_delivery_offset_settles_only_when_due() -> None:
    d = desk(delivery_offset=2)
    sid = open_offer(d, BUYER, SELLER, 100.0)
    d.advance(1)
    d.act(SELLER, AcceptOffer(session_id=sid, offer_id=1), step=2)
    out, fulfilled = d.advance(2)
    assert [c["stage"] for t, c, _ in out if t == "contract"] == ["created"]
    assert d.contract_views(BUYER)[0]["delivery_step"] == 4
    assert d.advance(3) == ([], [])
    out, fulfilled = d.advance(4)
    assert len(fulfilled) == 1 and d.contract_views(BUYER) == []


def test_breach_by_a_buyer_who_cannot_pay_costs_reputation() -> None:
    d = desk()
    sid = open_offer(d, POOR, SELLER, 100.0)
    d.advance(1)
    d.act(SELLER, AcceptOffer(session_id=sid, offer_id=1), step=2)
    out, fulfilled = d.advance(2)
    assert fulfilled == []
    [settled] = [c for t, c, _ in out if t == "contract" and c["stage"] == "settled"]
    assert settled["status"] == "breached" and settled["breached_by"] == POOR
    assert settled["settlement"]["penalty"] == 5.0  # 10% of 100.00 is due; capped at its 5.00
    assert d.ledger.account(POOR).cash == 0 and d.ledger.account(SELLER).cash == 500
    assert d.ledger.account(SELLER).holdings["widget"] == 3
    assert ("reputation", POOR) in [(t, a) for t, _, a in out]
    assert d.reputation.score(POOR) < 0.5


# ----------------------------------------------------------------------------- opening rules


def test_opening_needs_another_agent_who_can_trade_with_you() -> None:
    d = desk()
    offer = {"good": "widget", "terms": {"price": 100.0}}
    assert "counterparty_id" in reason(d, BUYER, MakeOffer(counterparty_id=BUYER, **offer))
    assert "counterparty_id" in reason(d, BUYER, MakeOffer(counterparty_id=99, **offer))
    assert "counterparty_id" in reason(d, BUYER, MakeOffer(**offer))
    assert reason(d, BUYER, MakeOffer(counterparty_id=POOR, **offer)) == (
        f"agent {POOR} cannot trade with you (buyer and buyer)"
    )
    assert "cannot trade with you" in reason(d, BUYER, MakeOffer(counterparty_id=REGULATOR, **offer))
    assert "give the good" in reason(d, BUYER, MakeOffer(counterparty_id=SELLER, good="gold", terms={"price": 1.0}))
    assert d.sessions == {}


def test_opening_is_refused_where_the_scenario_does_not_allow_it() -> None:
    d = desk()
    d.settings = d.settings.model_copy(update={"open_sessions": False})
    assert "opening new ones is not allowed" in reason(
        d, BUYER, MakeOffer(counterparty_id=SELLER, good="widget", terms={"price": 100.0})
    )
    assert "make_offer" not in d.available(BUYER, Role.BUYER)
    assert d.sessions == {}


def test_only_parties_act_in_a_session() -> None:
    d = desk()
    sid = open_offer(d, BUYER, SELLER, 100.0)
    d.advance(1)
    assert reason(d, SELLER2, AcceptOffer(session_id=sid, offer_id=1), step=2) == f"no negotiation {sid!r} of yours"
    assert reason(d, SELLER, AcceptOffer(session_id="N99", offer_id=1), step=2) == "no negotiation 'N99' of yours"


# ----------------------------------------------------------------------------- hard rules


def test_opening_offer_at_the_cap_and_one_tick_above() -> None:
    d = desk()
    open_offer(d, BUYER, SELLER, 200.0)
    assert "above the price cap 200.0" in reason(
        d, SELLER2, MakeOffer(counterparty_id=BUYER, good="widget", terms={"price": 200.01})
    )
    assert len(d.sessions) == 1  # the refused opening opened nothing


def test_counter_offers_are_held_to_the_cap_and_the_floor() -> None:
    d = desk()
    sid = open_offer(d, BUYER, SELLER, 100.0)
    d.advance(1)
    assert "above the price cap" in reason(d, SELLER, MakeOffer(session_id=sid, terms={"price": 200.01}), step=2)
    assert "below the price floor 10.0" in reason(d, SELLER, MakeOffer(session_id=sid, terms={"price": 9.99}), step=2)
    d.act(SELLER, MakeOffer(session_id=sid, terms={"price": 10.0}), step=2)  # the floor itself is fine


def test_auction_bids_are_held_to_the_cap() -> None:
    d = desk()
    spec = SessionSpec(protocol="first_price", good="widget", sellers="s", bidders="b")
    [(_, opened, _)] = d.open_scheduled(spec, {"s": [SELLER], "b": [BUYER, POOR]}, step=1)
    sid = opened["session_id"]
    assert "above the price cap" in reason(d, BUYER, Bid(session_id=sid, price=200.01))
    d.act(BUYER, Bid(session_id=sid, price=200.0), step=1)
    assert d.views(BUYER, 1)[0]["my_value"] == 42.0


def test_accepting_ones_own_standing_offer_is_rejected() -> None:
    d = desk()
    sid = open_offer(d, BUYER, SELLER, 100.0)
    assert "already acted" in reason(d, BUYER, AcceptOffer(session_id=sid, offer_id=1), step=1)
    d.advance(1)  # the seller's turn, left unused: the turn comes back with the buyer's offer standing
    d.advance(2)
    assert d.sessions[sid].turn() == BUYER  # type: ignore[attr-defined]
    assert reason(d, BUYER, AcceptOffer(session_id=sid, offer_id=1), step=3) == (
        f"there is no standing offer from agent {SELLER} to accept"
    )
    assert "accept_offer" not in d.available(BUYER, Role.BUYER)
    assert d.sessions[sid].status == "open" and d.contracts.all() == []


def test_suspension_blocks_negotiating_through_its_last_step() -> None:
    d = desk()
    sid = open_offer(d, BUYER, SELLER, 100.0)
    d.advance(1)
    d.rules.suspend(SELLER, 2)
    assert "suspended" in reason(d, SELLER, AcceptOffer(session_id=sid, offer_id=1), step=2)
    d.advance(2)
    d.advance(3)  # the buyer's turn passes
    d.act(SELLER, AcceptOffer(session_id=sid, offer_id=1), step=4)
    assert d.sessions[sid].status == "agreed"


def test_reject_passes_the_turn_and_clears_the_standing_offer() -> None:
    d = desk()
    sid = open_offer(d, BUYER, SELLER, 100.0)
    d.advance(1)
    d.act(SELLER, RejectOffer(session_id=sid, offer_id=1), step=2)
    d.advance(2)
    assert "no standing offer" in reason(d, BUYER, AcceptOffer(session_id=sid, offer_id=1), step=3)


# ----------------------------------------------------------------------------- calls for proposals


def test_call_for_proposals_reaches_the_named_sellers_only() -> None:
    d = desk()
    events = d.act(BUYER, CallForProposals(good="widget", seller_ids=[SELLER]), step=1)
    [opened] = [c for t, c, _ in events if t == "negotiation"]
    assert opened["parties"] == [BUYER, SELLER] and opened["protocol"] == "call_for_proposals"
    assert "is not a seller you can call" in reason(d, BUYER, CallForProposals(good="widget", seller_ids=[POOR]))
    assert "is not a seller you can call" in reason(d, BUYER, CallForProposals(good="widget", seller_ids=[BUYER]))
    assert "no negotiable good 'gold'" in reason(d, BUYER, CallForProposals(good="gold"))
    events = d.act(BUYER, CallForProposals(good="widget"), step=1)  # every seller
    assert [c["parties"] for t, c, _ in events if t == "negotiation"] == [[BUYER, SELLER, SELLER2]]


def test_call_for_proposals_can_be_disabled() -> None:
    d = desk()
    d.settings = d.settings.model_copy(update={"call_for_proposals": False})
    assert "not allowed" in reason(d, BUYER, CallForProposals(good="widget"))
    assert "call_for_proposals" not in d.available(BUYER, Role.BUYER)
